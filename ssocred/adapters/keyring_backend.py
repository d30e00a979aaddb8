"""Which keyring backend the store uses: keyring's choice, never one that cannot keep secrets.

The detected backend's name (not a secret) is remembered in the state dir, so that later runs
can skip keyring's detection, which is most of its start-up cost. keyring's Secret Service
backend is used through ``ssocred.adapters.secret_service``: the same items, one D-Bus connection
per process rather than one per call.
Example: ``use_remembered_backend(); usable_backend().name == "SecretService Keyring"``
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Any

from ssocred.errors import StoreError


def usable_backend() -> Any:
    """keyring's chosen backend, or StoreError when it cannot keep secrets: ``usable_backend().name``."""
    import keyring
    from keyring.backends import chainer, fail, null

    kr = _pooled(keyring.get_keyring())
    empty_chain = isinstance(kr, chainer.ChainerBackend) and not kr.backends
    if isinstance(kr, (fail.Keyring, null.Keyring)) or empty_chain or _unchosen_plaintext(kr):
        raise StoreError(
            f"no usable OS keyring (keyring picked {kr.name!r})",
            fix="install and unlock a Secret Service such as gnome-keyring, "
            "or choose a backend with PYTHON_KEYRING_BACKEND",
        )
    if not isinstance(kr, chainer.ChainerBackend):
        _remember(getattr(kr, "KEYRING_NAME", None) or f"{type(kr).__module__}.{type(kr).__name__}")
    return kr


def _pooled(kr: Any) -> Any:
    """keyring's own Secret Service backend becomes the pooled one (made keyring's current backend)."""
    if f"{type(kr).__module__}.{type(kr).__qualname__}" != _SECRET_SERVICE:
        return kr
    import keyring.core

    from ssocred.adapters.secret_service import PooledSecretService

    pooled = PooledSecretService.like(kr)
    keyring.core.set_keyring(pooled)
    return pooled


_REMEMBERED = "keyring-backend"
_SECRET_SERVICE = "keyring.backends.SecretService.Keyring"  # noqa: S105 - a class name
_remembered: str | None = None
#: What a remembered backend looks like: a class in keyring's or keyrings.alt's backend packages.
_BACKEND_NAME = re.compile(r"(?:keyring\.backends|keyrings)(?:\.[A-Za-z_]\w*)+")
_MAX_NAME = 200


def _remember(name: str) -> None:
    """Note the detected backend (not a secret) so that later runs can skip keyring's detection."""
    global _remembered
    if _remembered == name or os.environ.get("PYTHON_KEYRING_BACKEND") or not _BACKEND_NAME.fullmatch(name):
        return  # a backend outside keyring's packages is never loaded by name from a file: detection decides
    from ssocred.adapters import paths

    path = paths.state_dir() / _REMEMBERED
    if _read_remembered(path) != name:
        with contextlib.suppress(OSError):
            paths.private_dir(path.parent)
            paths.atomic_write(path, name.encode("utf-8"))
    _remembered = name


def _read_remembered(path: Path) -> str | None:
    """The backend name in the state file, or None when it holds none (missing, unreadable or garbage).

    Only a name of a keyring backend class counts: the file must never make ssocred import anything else.
    Example: ``_read_remembered(state_dir() / "keyring-backend") == "keyring.backends.SecretService.Keyring"``
    """
    try:
        with path.open("rb") as file:
            raw = file.read(_MAX_NAME + 1)
        name = raw.decode("utf-8").strip()
    except (OSError, ValueError):
        return None
    return name if len(raw) <= _MAX_NAME and _BACKEND_NAME.fullmatch(name) else None


def use_remembered_backend() -> None:
    """Load the backend an earlier run detected, skipping detection (most of keyring's start-up).

    Only when neither ``PYTHON_KEYRING_BACKEND`` nor a keyringrc file chooses one; anything
    unexpected leaves keyring to detect as usual. Example: called first by ``ssocred process``.
    """
    global _remembered
    if os.environ.get("PYTHON_KEYRING_BACKEND"):
        return
    from ssocred.adapters import paths

    name = _read_remembered(paths.state_dir() / _REMEMBERED)
    if name is None:
        return  # detection decides
    from ssocred.adapters.deferred_imports import READ_UNUSED, defer

    defer(READ_UNUSED)
    import keyring.core

    if keyring.core.load_config():
        return
    try:
        keyring.core.set_keyring(_load(name))
    except Exception:  # a backend that no longer loads: detection decides
        return
    _remembered = name


def _load(name: str) -> Any:
    """keyring's ``load_keyring(name)``; the Secret Service checked on the connection that its calls reuse."""
    import keyring.core

    if name != _SECRET_SERVICE:
        return keyring.core.load_keyring(name)
    from ssocred.adapters.secret_service import PooledSecretService

    pooled = PooledSecretService()
    pooled.check_available()
    return pooled


def _unchosen_plaintext(kr: Any) -> bool:
    """A keyrings.alt file backend that keyring fell back to rather than one the user chose."""
    if not type(kr).__module__.startswith("keyrings.alt"):
        return False
    import keyring.core

    return not (os.environ.get("PYTHON_KEYRING_BACKEND") or keyring.core.load_config())
