"""The store's non-secret index: which keyring items exist and when they expire.

The keyring has no "list" call, so ``status``, ``logout`` and the daemon read this file
instead. It holds names, times and flags only, never a token or a secret. ``refreshStartedAt``
is set while a refresh is in flight (and stays set when one was interrupted before its result
was stored): the next caller can then say why the service rejects the old refresh token.
``rejectedAt`` is when the service refused the stored token (the portal its access token even
after a refresh, or the token endpoint its refresh token); storing a new token clears it. Format::

    {"version": 1,
     "sessions": {"corp": {"expiresAt": 1.7e9, "refreshable": true,
                           "registrationExpiresAt": 1.8e9, "updatedAt": 1.7e9,
                           "refreshStartedAt": null, "rejectedAt": null}},
     "creds": [{"session": "corp", "accountId": "111122223333", "roleName": "Admin",
                "expiration": 1.7e9, "updatedAt": 1.7e9, "lastRequestedAt": 1.7e9}]}

Example: ``IndexFile(Path("/tmp/s/index.json"), timeout=10).read().sessions``
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ssocred.adapters.paths import atomic_write, private_dir, service_file
from ssocred.errors import StoreError
from ssocred.socket_protocol import STORE_KEYRING

FORMAT_VERSION = 1


def index_path(service: str, store: str = STORE_KEYRING) -> Path:
    """The index of a keyring service: ``state_dir()/index.json`` for ``"ssocred"`` in the OS keyring.

    A memory-store daemon's items have their own (``index-memory.json``): they end with it, while
    the OS keyring's, if any, stay listed for when the keyring is reachable again.
    """
    return service_file("index" if store == STORE_KEYRING else f"index-{store}", service)


@dataclass(frozen=True)
class SessionEntry:
    """An indexed SSO session: ``SessionEntry("corp", 1.7e9, True, 1.8e9, updated_at=1.7e9)``.

    ``refresh_started_at`` is when a refresh that has not stored its result began (None: none);
    ``rejected_at`` when the service refused this token (None: not known to be refused).
    """

    name: str
    expires_at: float
    refreshable: bool
    registration_expires_at: float | None
    updated_at: float
    refresh_started_at: float | None = None
    rejected_at: float | None = None


@dataclass(frozen=True)
class CredsEntry:
    """Indexed role credentials: ``CredsEntry("corp", "111122223333", "Admin", 1.7e9, 1.7e9, 1.7e9)``."""

    session: str
    account_id: str
    role_name: str
    expiration: float
    updated_at: float
    last_requested_at: float

    @property
    def key(self) -> tuple[str, str, str]:
        """The item's identity: ``("corp", "111122223333", "Admin")``."""
        return (self.session, self.account_id, self.role_name)


@dataclass(frozen=True)
class Index:
    """Everything the store holds, without secrets: ``Index().sessions == {}``."""

    sessions: Mapping[str, SessionEntry] = field(default_factory=dict)
    creds: tuple[CredsEntry, ...] = ()

    def creds_of(self, session: str) -> tuple[CredsEntry, ...]:
        """The credentials indexed for one session: ``index.creds_of("corp")``."""
        return tuple(c for c in self.creds if c.session == session)

    def find_creds(self, session: str, account_id: str, role_name: str) -> CredsEntry | None:
        """One credentials entry, or None: ``index.find_creds("corp", "111122223333", "Admin")``."""
        return next((c for c in self.creds if c.key == (session, account_id, role_name)), None)

    def with_session(self, entry: SessionEntry) -> Index:
        """A copy with the session added or replaced: ``index.with_session(entry)``."""
        return Index({**self.sessions, entry.name: entry}, self.creds)

    def with_creds(self, entry: CredsEntry) -> Index:
        """A copy with the credentials added or replaced: ``index.with_creds(entry)``."""
        return Index(self.sessions, (*(c for c in self.creds if c.key != entry.key), entry))

    def without(self, session: str | None, creds: frozenset[tuple[str, str, str]]) -> Index:
        """A copy without a session and some credentials: ``index.without("corp", frozenset())``."""
        sessions = {name: e for name, e in self.sessions.items() if name != session}
        return Index(sessions, tuple(c for c in self.creds if c.key not in creds))


def render(index: Index) -> bytes:
    """The file's bytes: ``render(Index()) == b'{"version":1,"sessions":{},"creds":[]}'``."""
    data = {
        "version": FORMAT_VERSION,
        "sessions": {
            e.name: {
                "expiresAt": e.expires_at,
                "refreshable": e.refreshable,
                "registrationExpiresAt": e.registration_expires_at,
                "updatedAt": e.updated_at,
                "refreshStartedAt": e.refresh_started_at,
                "rejectedAt": e.rejected_at,
            }
            for e in index.sessions.values()
        },
        "creds": [
            {
                "session": c.session,
                "accountId": c.account_id,
                "roleName": c.role_name,
                "expiration": c.expiration,
                "updatedAt": c.updated_at,
                "lastRequestedAt": c.last_requested_at,
            }
            for c in index.creds
        ],
    }
    return json.dumps(data, separators=(",", ":")).encode()


def parse(raw: bytes) -> Index:
    """Inverse of ``render``: ``parse(render(ix)) == ix``; ValueError/KeyError/TypeError if malformed."""
    data: dict[str, Any] = json.loads(raw)
    if data.get("version") != FORMAT_VERSION:
        raise ValueError(f"unknown index version {data.get('version')!r}")
    sessions = {
        str(name): SessionEntry(
            name=str(name),
            expires_at=float(e["expiresAt"]),
            refreshable=bool(e["refreshable"]),
            registration_expires_at=_optional_float(e["registrationExpiresAt"]),
            updated_at=float(e["updatedAt"]),
            refresh_started_at=_optional_float(e.get("refreshStartedAt")),
            rejected_at=_optional_float(e.get("rejectedAt")),
        )
        for name, e in data["sessions"].items()
    }
    creds = tuple(
        CredsEntry(
            session=str(c["session"]),
            account_id=str(c["accountId"]),
            role_name=str(c["roleName"]),
            expiration=float(c["expiration"]),
            updated_at=float(c["updatedAt"]),
            last_requested_at=float(c["lastRequestedAt"]),
        )
        for c in data["creds"]
    )
    return Index(sessions, creds)


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


class IndexFile:
    """The index on disk: lock-free reads, read-modify-write under its own file lock.

    Example: ``IndexFile(path, timeout=10).update(lambda ix: ix.without("corp", frozenset()))``
    """

    def __init__(self, path: Path, timeout: float) -> None:
        self.path = path
        self.timeout = timeout

    def read(self) -> Index:
        """The current index, empty when there is no file yet: ``IndexFile(p, 10).read().creds``."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return Index()
        except OSError as exc:
            raise StoreError(
                f"cannot read the store index {self.path} ({exc.strerror})",
                fix="check its permissions",
            ) from None
        try:
            return parse(raw)
        except (ValueError, KeyError, TypeError, AttributeError):
            raise StoreError(
                f"the store index {self.path} is corrupt",
                fix=f"remove it (rm {self.path}; it holds no secrets) and log in again",
            ) from None

    def update(self, change: Callable[[Index], Index]) -> Index:
        """Apply ``change`` under the file lock: ``index_file.update(lambda ix: ix.with_session(e))``."""
        from ssocred.adapters import locks

        try:
            private_dir(self.path.parent)
        except OSError as exc:
            raise self._unwritable(exc) from None
        lock = locks.Lock(self.path.with_name(f".{self.path.name}.lock"))
        with locks.held(lock, f"the store index {self.path}", timeout=self.timeout):
            new = change(self.read())
            try:
                atomic_write(self.path, render(new))
            except OSError as exc:  # a full disk, a read-only or unwritable state dir
                raise self._unwritable(exc) from None
            return new

    def _unwritable(self, exc: OSError) -> StoreError:
        return StoreError(f"cannot write the store index {self.path} ({exc.strerror or type(exc).__name__})",
                          fix=f"check the permissions and free space of {self.path.parent}")
