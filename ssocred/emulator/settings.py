"""Emulator settings: fixed at start from the command line, most of them changeable at run time."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

_RATES = ("fail_rate", "throttle_rate")
_BOOLS = ("rotate", "deny_authorize", "manual_approve")
_POSITIVE = ("token_ttl", "cred_ttl", "registration_ttl", "device_ttl", "code_ttl")
_MAX_DEVICE_TTL = 600


@dataclass
class Settings:
    """Lifetimes (seconds), approval behaviour and fault injection; ``POST /_control`` changes them."""

    token_ttl: int = 3600
    cred_ttl: int = 3600
    registration_ttl: int = 90 * 86400
    device_ttl: int = _MAX_DEVICE_TTL
    code_ttl: int = 300
    rotate: bool = True
    approve_after_polls: int = 1
    manual_approve: bool = False
    deny_authorize: bool = False
    fail_rate: float = 0.0
    throttle_rate: float = 0.0
    latency_ms: int = 0
    #: Role ARNs whose AssumeRole is refused with AccessDenied (as a trust policy that does not name the caller).
    deny_assume_role: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        """Reject out-of-range values."""
        for name, value in asdict(self).items():
            _check(name, value)

    def update(self, changes: Mapping[str, Any]) -> None:
        """Apply changes atomically; ValueError names the first bad key or value."""
        known = {f.name for f in fields(self)}
        for name in changes:
            if name not in known:
                raise ValueError(f"unknown setting {name!r}; known: {', '.join(sorted(known))}")
        updated = replace(self, **dict(changes))
        for name in changes:
            setattr(self, name, getattr(updated, name))

    def as_dict(self) -> dict[str, Any]:
        """All settings as a JSON-ready dict."""
        return asdict(self)


def _check(name: str, value: Any) -> None:
    if name == "deny_assume_role":
        if not isinstance(value, list) or not all(isinstance(arn, str) for arn in value):
            raise ValueError(f"{name} must be a list of role ARNs")
    elif name in _BOOLS:
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false")
    elif name in _RATES:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ValueError(f"{name} must be a number from 0 to 1")
    elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a whole number >= 0")
    elif name in _POSITIVE and value == 0:
        raise ValueError(f"{name} must be at least 1")
    elif name == "device_ttl" and value > _MAX_DEVICE_TTL:
        raise ValueError(f"device_ttl must be at most {_MAX_DEVICE_TTL}")
