"""The token store: SSO sessions and role credentials in the OS keyring, one item per object.

Keyring items under the service name (``$SSOCRED_KEYRING_SERVICE`` or ``ssocred``):

* ``session:<name>``: JSON of ``token_to_dict`` (token, refresh token, registration);
* ``creds:<session>:<account>:<role>``: JSON of ``credentials_to_dict``.

Large values are split into parts (format in ``ssocred.keyring_io``). A small non-secret index
(``ssocred.index``) records which items exist and when they expire, since the keyring cannot
list them. Reads take no lock; writers hold ``session_lock`` / ``role_lock`` around
read-check-fetch-write, and ``login_lock`` keeps logins to one per session.

Example: ``Store().load_session("corp")``
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ssocred.errors import StoreError
from ssocred.index import CredsEntry, Index, IndexFile, SessionEntry
from ssocred.keyring_io import KeyringIO, corrupt_error
from ssocred.model import (
    RoleCredentials,
    Token,
    credentials_from_dict,
    credentials_to_dict,
    token_from_dict,
    token_to_dict,
)
from ssocred.paths import lock_dir, state_dir
from ssocred.rundir import DEFAULT_SERVICE, keyring_service

if TYPE_CHECKING:
    import filelock

__all__ = ["CredsEntry", "Index", "SessionEntry", "Store", "StoreError"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def session_key(name: str) -> str:
    """Keyring username of a session: ``session_key("corp") == "session:corp"``."""
    return f"session:{name}"


def creds_key(session: str, account: str, role: str) -> str:
    """Keyring username of role credentials: ``creds_key("corp", "1", "Admin") == "creds:corp:1:Admin"``."""
    return f"creds:{session}:{account}:{role}"


def _dumps(data: object) -> str:
    # ASCII-only JSON keeps the stored size predictable for chunking.
    return json.dumps(data, separators=(",", ":"), ensure_ascii=True)


class Store:
    """SSO sessions and role credentials kept in the OS keyring.

    Example: ``Store(service="ssocred-test").save_session("corp", token)``
    """

    def __init__(self, service: str | None = None, timeout: float | None = None) -> None:
        self.service = service or keyring_service()
        # Long enough for a busy Secret Service with dozens of parallel callers, short enough
        # that a hidden unlock prompt does not hang every caller forever.
        self.timeout = timeout if timeout is not None else _env_timeout()
        self._keyring = KeyringIO(self.service, self.timeout)

    # --- backend ------------------------------------------------------------------------------

    def backend_name(self) -> str:
        """The keyring backend in use, e.g. ``"SecretService Keyring"``; StoreError if none is usable."""
        return self._keyring.backend_name()

    # --- sessions -----------------------------------------------------------------------------

    def load_session(self, name: str) -> Token | None:
        """The stored token of ``name``, or None when never saved: ``store.load_session("corp")``."""
        key = session_key(name)
        raw = self._keyring.read(key, owner=name)
        if raw is None:
            return None
        try:
            return token_from_dict(json.loads(raw))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise corrupt_error(key, name) from None

    def save_session(self, name: str, token: Token) -> None:
        """Store ``token`` as session ``name`` and index it: ``store.save_session("corp", token)``."""
        self._keyring.write(session_key(name), _dumps(token_to_dict(token)))
        now = time.time()
        entry = SessionEntry(
            name=name,
            expires_at=token.expires_at,
            refreshable=token.refreshable(now),
            registration_expires_at=token.registration.expires_at if token.registration else None,
            updated_at=now,
        )
        self._index.update(lambda ix: ix.with_session(entry))

    def delete_session(self, name: str) -> None:
        """Remove a session, its role credentials and index entries: ``store.delete_session("corp")``."""
        gone: set[tuple[str, str, str]] = set()
        for entry in self._index.read().creds_of(name):
            self._keyring.delete(creds_key(*entry.key))
            gone.add(entry.key)
        self._keyring.delete(session_key(name))
        # Only the entries whose items were removed: credentials saved meanwhile stay indexed.
        self._index.update(lambda ix: ix.without(name, frozenset(gone)))

    # --- role credentials ---------------------------------------------------------------------

    def load_creds(self, session: str, account: str, role: str) -> RoleCredentials | None:
        """Stored credentials, or None: ``store.load_creds("corp", "111122223333", "Admin")``."""
        key = creds_key(session, account, role)
        raw = self._keyring.read(key, owner=session)
        if raw is None:
            return None
        try:
            return credentials_from_dict(json.loads(raw))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise corrupt_error(key, session) from None

    def save_creds(
        self, session: str, account: str, role: str, creds: RoleCredentials, *, requested: bool = True
    ) -> None:
        """Store and index credentials: ``store.save_creds("corp", "111122223333", "Admin", creds)``.

        ``requested=False`` (the daemon's pre-fetch) keeps the recorded time of the last request,
        so that pre-fetching alone never makes a role look in use.
        """
        self._keyring.write(creds_key(session, account, role), _dumps(credentials_to_dict(creds)))
        now = time.time()

        def change(ix: Index) -> Index:
            last = now
            if not requested:
                old = ix.find_creds(session, account, role)
                last = old.last_requested_at if old is not None else 0.0
            return ix.with_creds(CredsEntry(session, account, role, creds.expiration, now, last))

        self._index.update(change)

    def delete_creds(self, session: str, account: str, role: str) -> None:
        """Remove credentials and index entry: ``store.delete_creds("corp", "111122223333", "Admin")``."""
        self._keyring.delete(creds_key(session, account, role))
        self._index.update(lambda ix: ix.without(None, frozenset({(session, account, role)})))

    def touch_creds(self, session: str, account: str, role: str, when: float | None = None) -> None:
        """Record that credentials were asked for (the daemon pre-fetches recently used ones).

        Example: ``store.touch_creds("corp", "111122223333", "Admin")``; unindexed ones are ignored.
        """
        at = time.time() if when is None else when

        def change(ix: Index) -> Index:
            entry = ix.find_creds(session, account, role)
            if entry is None or entry.last_requested_at >= at:
                return ix
            return ix.with_creds(CredsEntry(*entry.key, entry.expiration, entry.updated_at, at))

        self._index.update(change)

    # --- index and locks ----------------------------------------------------------------------

    def index(self) -> Index:
        """What the store holds, from the index file only: ``store.index().sessions.keys()``."""
        return self._index.read()

    def index_path(self) -> Path:
        """The index file: ``state_dir()/index.json`` for the default service name."""
        if self.service == DEFAULT_SERVICE:
            return state_dir() / "index.json"
        return state_dir() / f"index-{_safe_name(self.service)[:40]}-{_digest(self.service, 8)}.json"

    def session_lock(self, name: str) -> filelock.FileLock:
        """Guards read-check-refresh-write of a token: ``with store.session_lock("corp"): ...``."""
        return self._lock("session", name)

    def login_lock(self, name: str) -> filelock.FileLock:
        """One interactive login per session at a time: ``with store.login_lock("corp"): ...``."""
        return self._lock("login", name)

    def role_lock(self, session: str, account: str, role: str) -> filelock.FileLock:
        """Guards fetch-write of one role's credentials: ``with store.role_lock("corp", "1", "Admin"):``."""
        return self._lock("role", session, account, role)

    @property
    def _index(self) -> IndexFile:
        # Resolved on each use so that a changed SSOCRED_STATE_DIR is honoured.
        return IndexFile(self.index_path(), self.timeout)

    def _lock(self, kind: str, *parts: str) -> filelock.FileLock:
        from filelock import FileLock

        digest = _digest("\0".join((self.service, kind, *parts)), 16)
        readable = _safe_name(":".join(parts))[:40]
        directory = lock_dir()
        return FileLock(str(directory / f"{kind}-{readable}-{digest}.lock"), mode=0o600)


def _env_timeout() -> float:
    """``$SSOCRED_KEYRING_TIMEOUT`` in seconds when it is a positive number, else 30."""
    try:
        value = float(os.environ.get("SSOCRED_KEYRING_TIMEOUT") or 30)
    except ValueError:
        return 30.0
    return value if value > 0 else 30.0


def _digest(text: str, length: int) -> str:
    import hashlib  # deferred: loading OpenSSL costs the start-up of every caller

    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _safe_name(text: str) -> str:
    """A file-name-safe rendering: ``_safe_name("a/../b c") == "a_.._b_c"``."""
    return _UNSAFE.sub("_", text).strip(".") or "_"
