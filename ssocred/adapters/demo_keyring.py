"""A throw-away keyring backend for ``ssocred demo`` on machines without an OS keyring.

It is only ever selected by the demo, explicitly, through ``PYTHON_KEYRING_BACKEND``, and
keeps the emulator's throw-away tokens in a 0600 file inside the demo's temporary directory.
Example: ``PYTHON_KEYRING_BACKEND=ssocred.adapters.demo_keyring.DemoKeyring SSOCRED_DEMO_STORE=/tmp/d.json``
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError

from ssocred.adapters.paths import atomic_write


class DemoKeyring(KeyringBackend):
    """A file-backed keyring for the demo only; ``priority`` keeps it out of auto-detection."""

    priority = -1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]

    def _path(self) -> Path:
        return Path(os.environ["SSOCRED_DEMO_STORE"])

    def _load(self) -> dict[str, str]:
        try:
            data = json.loads(self._path().read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        return {str(k): str(v) for k, v in data.items()}

    def get_password(self, service: str, username: str) -> str | None:
        """The stored value or None."""
        return self._load().get(f"{service}\0{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        """Store a value (file rewritten atomically, 0600)."""
        data = self._load()
        data[f"{service}\0{username}"] = password
        atomic_write(self._path(), json.dumps(data).encode("utf-8"))

    def delete_password(self, service: str, username: str) -> None:
        """Delete a value; PasswordDeleteError when absent, as keyring's contract says."""
        data = self._load()
        if data.pop(f"{service}\0{username}", None) is None:
            raise PasswordDeleteError(username)
        atomic_write(self._path(), json.dumps(data).encode("utf-8"))


def use_demo_store(path: str) -> None:
    """Keep this process's and its children's secrets in the demo's file at ``path`` (the demo only).

    Example: ``use_demo_store("/tmp/ssocred-demo/demo-store.json")``
    """
    import keyring

    os.environ["PYTHON_KEYRING_BACKEND"] = f"{__name__}.DemoKeyring"
    os.environ["SSOCRED_DEMO_STORE"] = path
    keyring.set_keyring(DemoKeyring())
