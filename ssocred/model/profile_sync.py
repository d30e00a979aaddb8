"""Profiles kept in sync (opt-in): the settings an ``[sso-session]`` carries, and what a sync tells; pure.

``ssocred configure populate --keep-in-sync`` writes the settings; the daemon then re-runs the
populate (with ``--prune``) on a schedule and after each login.
Example: ``settings({"ssocred_sync_profiles": "true"}) == SyncSettings(DEFAULT_TEMPLATE)``
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ssocred.model.naming import DEFAULT_TEMPLATE

SYNC_KEY = "ssocred_sync_profiles"
TEMPLATE_KEY = "ssocred_sync_template"
REGION_KEY = "ssocred_sync_region"
OUTPUT_KEY = "ssocred_sync_output"
#: How many accounts or roles a notification names before it says "and N more".
SHOWN = 8


@dataclass(frozen=True)
class SyncSettings:
    """How a session's profiles are written: ``SyncSettings("{account_name}.{role_name}", "eu-west-1", None)``."""

    template: str = DEFAULT_TEMPLATE
    region: str | None = None
    output: str | None = None


def settings(values: Mapping[str, str]) -> SyncSettings | None:
    """The sync settings of an ``[sso-session]``'s keys, None when sync is off.

    Example: ``settings({"ssocred_sync_profiles": "false"}) is None``
    """
    if values.get(SYNC_KEY, "").strip().lower() not in ("true", "yes", "1"):
        return None
    return SyncSettings(values.get(TEMPLATE_KEY) or DEFAULT_TEMPLATE, values.get(REGION_KEY) or None,
                        values.get(OUTPUT_KEY) or None)


def values(chosen: SyncSettings) -> dict[str, str]:
    """The keys that turn sync on with ``chosen``: ``values(SyncSettings())["ssocred_sync_profiles"] == "true"``."""
    out = {SYNC_KEY: "true", TEMPLATE_KEY: chosen.template}
    if chosen.region:
        out[REGION_KEY] = chosen.region
    if chosen.output:
        out[OUTPUT_KEY] = chosen.output
    return out


@dataclass(frozen=True)
class Role:
    """An account and role a profile is for: ``Role("222222222222", "Admin", "Prod")`` (name when known)."""

    account_id: str
    role_name: str
    account_name: str | None = None

    def shown(self) -> str:
        """``"Prod (222222222222) Admin"``, or ``"222222222222 Admin"`` without a name."""
        account = f"{self.account_name} ({self.account_id})" if self.account_name else self.account_id
        return f"{account} {self.role_name}"


def summary(session: str, appeared: list[Role], gone: list[Role]) -> str:
    """One notification's text: ``summary("corp", [Role("2…", "Admin", "Prod")], [])`` names what changed."""
    parts = []
    for word, roles in (("new", appeared), ("gone", gone)):
        if roles:
            names = ", ".join(r.shown() for r in roles[:SHOWN])
            more = f" and {len(roles) - SHOWN} more" if len(roles) > SHOWN else ""
            parts.append(f"{word}: {names}{more}")
    return f"SSO session {session}: " + "; ".join(parts)
