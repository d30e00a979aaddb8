"""The token store: SSO sessions and role credentials in the OS keyring, one item per object.

Keyring items under the service name (``$SSOCRED_KEYRING_SERVICE`` or ``ssocred``):

* ``session:<name>``: JSON of ``token_to_dict`` (token, refresh token, registration);
* ``creds:<session>:<account>:<role>``: JSON of ``credentials_to_dict`` (a chained role's item also
  holds what produced it, see ``ssocred.model.chain``).

Large values are split into parts (format in ``ssocred.adapters.keyring_io``). A small non-secret index
(``ssocred.adapters.store_index``) records which items exist and when they expire, since the keyring cannot
list them. Reads take no lock; writers hold ``session_lock`` / ``role_lock`` around
read-check-fetch-write, and ``login_lock`` keeps logins to one per session (all ``ssocred.adapters.locks``).

Nothing is stored that logout cannot find: a role is indexed (as a placeholder, see
``is_placeholder``) before its first keyring write, every generation of a chunked item is
journaled (``ssocred.adapters.chunkjournal``), and ``delete_session`` removes all of it, index entries
and role lock files included. ``sweep`` removes what killed writers left behind. Where a daemon keeps
the items in its memory (``ssocred daemon --store memory``), the same items live there instead.

Example: ``Store().load_session("corp")``
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ssocred.adapters.keyring_io import KeyringIO, corrupt_error
from ssocred.adapters.paths import lock_dir
from ssocred.adapters.store_index import CredsEntry, Index, IndexFile, SessionEntry, index_path
from ssocred.errors import NoKeyring, StoreError
from ssocred.model.sso import (
    RoleCredentials,
    Token,
    credentials_from_dict,
    credentials_to_dict,
    token_from_dict,
    token_to_dict,
)
from ssocred.socket_protocol import keyring_service

if TYPE_CHECKING:
    from ssocred.adapters.locks import Lock

__all__ = ["CredsEntry", "Index", "SessionEntry", "Store", "StoreError", "SweepReport"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: A generation of parts younger than this may belong to a write in progress; the sweep leaves it.
SWEEP_GRACE = 600.0


@dataclasses.dataclass(frozen=True)
class SweepReport:
    """What ``Store.sweep`` removed, counts only: ``SweepReport(generations=1, parts=3, lock_files=0)``."""

    generations: int
    parts: int
    lock_files: int


def placeholder(session: str, account: str, role: str) -> CredsEntry:
    """The index entry of a role whose first keyring write has not happened (or finished) yet.

    All its times are 0: never recently requested (the daemon does not pre-fetch it), never an
    ``updated_at`` or ``expiration`` that real credentials carry. Example: ``placeholder("corp", "1", "R")``
    """
    return CredsEntry(session, account, role, expiration=0.0, updated_at=0.0, last_requested_at=0.0)


def is_placeholder(entry: CredsEntry) -> bool:
    """Whether an index entry stands for no credentials yet: ``is_placeholder(placeholder("c", "1", "R"))``."""
    return entry.updated_at == 0.0


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
        raw = self._read(key, owner=name)
        if raw is None:
            return None
        try:
            return token_from_dict(json.loads(raw))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise corrupt_error(key, name) from None

    def save_session(self, name: str, token: Token) -> None:
        """Store ``token`` as session ``name`` and index it: ``store.save_session("corp", token)``."""
        self.write_session(name, token)
        self.index_session(name, token)

    def write_session(self, name: str, token: Token) -> None:
        """Put ``token`` in the keyring only (the commit of a refresh): ``store.write_session("corp", t)``."""
        self._keyring.write(session_key(name), _dumps(token_to_dict(token)))

    def index_session(self, name: str, token: Token) -> None:
        """Record a stored ``token`` in the index, ending any refresh in flight: ``store.index_session("corp", t)``."""
        entry = _session_entry(name, token, time.time())
        self._index.update(lambda ix: ix.with_session(entry))

    def mark_refresh(self, name: str, token: Token, at: float) -> None:
        """Note that a refresh of ``token`` began at ``at`` and has not stored its result yet.

        Example: ``store.mark_refresh("corp", token, time.time())``; ``index_session`` clears it.
        """

        def change(ix: Index) -> Index:
            entry = ix.sessions.get(name) or _session_entry(name, token, at)
            return ix.with_session(dataclasses.replace(entry, refresh_started_at=at))

        self._index.update(change)

    def end_refresh(self, name: str) -> None:
        """Clear the mark of a refresh the service answered without a new token: ``store.end_refresh("corp")``."""

        def change(ix: Index) -> Index:
            entry = ix.sessions.get(name)
            if entry is None or entry.refresh_started_at is None:
                return ix
            return ix.with_session(dataclasses.replace(entry, refresh_started_at=None))

        self._index.update(change)

    def mark_rejected(self, name: str, token: Token, at: float) -> None:
        """Note that the service refused ``token`` at ``at`` (revoked, or logged out elsewhere).

        Only while ``token`` is still the indexed one: a token stored since is left unmarked.
        Example: ``store.mark_rejected("corp", token, time.time())``; ``index_session`` clears it.
        """

        def change(ix: Index) -> Index:
            entry = ix.sessions.get(name)
            if entry is None or entry.expires_at != token.expires_at or entry.rejected_at is not None:
                return ix  # another token by now, or this refusal is known already (the first time stays)
            return ix.with_session(dataclasses.replace(entry, rejected_at=at))

        self._index.update(change)

    def delete_session(self, name: str) -> None:
        """Remove a session with all its items, generations, index entries, role lock files: ``delete_session("c")``."""
        from ssocred.adapters import locks

        # Roles indexed or journaled now; credentials saved meanwhile stay indexed for the next logout.
        roles = {entry.key for entry in self._index.read().creds_of(name)} | self._journaled_roles(name)
        taken: list[Lock] = []
        try:
            for role in sorted(roles):
                lock = self.role_lock(*role)
                # Never wait: a fetch holding a role lock may be waiting for the session lock we hold.
                if locks.try_acquire(lock):
                    taken.append(lock)
                self._keyring.delete(creds_key(*role))
            self._keyring.delete(session_key(name))
            self._index.update(lambda ix: ix.without(name, frozenset(roles)))
            for lock in taken:
                locks.remove_held(lock)  # the last step of each hold: nothing else is done under them
        finally:
            for lock in taken:
                lock.release()

    def stored_sessions(self) -> frozenset[str]:
        """Every session the store may hold anything of (index and chunk journal): ``store.stored_sessions()``."""
        index = self._index.read()
        names = set(index.sessions) | {c.session for c in index.creds}
        for key in self._keyring.journal_keys():
            if key.startswith("session:"):
                names.add(key[len("session:"):])
            elif (role := _role_of(key)) is not None:
                names.add(role[0])
        return frozenset(names)

    def sweep(self, grace: float = SWEEP_GRACE) -> SweepReport:
        """Remove what killed writers left: ``store.sweep().parts`` (the daemon calls it from its scan).

        That is generations of parts older than ``grace`` s that no head references, and lock
        files of roles without an index entry (held ones are skipped).
        """
        generations, parts = self._keyring.sweep(grace)
        return SweepReport(generations, parts, self._sweep_role_locks())

    # --- role credentials ---------------------------------------------------------------------

    def load_creds(self, session: str, account: str, role: str) -> RoleCredentials | None:
        """Stored credentials, or None: ``store.load_creds("corp", "111122223333", "Admin")``."""
        key = creds_key(session, account, role)
        raw = self._read(key, owner=session)
        if raw is None:
            return None
        try:
            return credentials_from_dict(json.loads(raw))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise corrupt_error(key, session) from None

    def load_creds_extra(self, session: str, account: str, role: str) -> dict[str, Any] | None:
        """What was saved beside the credentials (``save_creds(extra=...)``), or None: ``load_creds_extra(*key)``."""
        key = creds_key(session, account, role)
        raw = self._read(key, owner=session)
        if raw is None:
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            raise corrupt_error(key, session) from None
        return data.get("extra") if isinstance(data, dict) and isinstance(data.get("extra"), dict) else None

    def save_creds(
        self, session: str, account: str, role: str, creds: RoleCredentials, *, requested: bool = True,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Store and index credentials: ``store.save_creds("corp", "111122223333", "Admin", creds)``.

        ``requested=False`` (the daemon's pre-fetch) keeps the recorded time of the last request,
        so that pre-fetching alone never makes a role look in use. A role new to the index is
        recorded as a placeholder before the keyring write, so that an item is never unindexed.
        ``extra`` (non-secret, JSON-ready) is kept in the same item for ``load_creds_extra``.
        """
        if self._index.read().find_creds(session, account, role) is None:
            first = placeholder(session, account, role)
            self._index.update(lambda ix: ix.with_creds(first) if ix.find_creds(*first.key) is None else ix)
        data = credentials_to_dict(creds)
        if extra is not None:
            data["extra"] = extra
        self._keyring.write(creds_key(session, account, role), _dumps(data))
        now = time.time()

        def change(ix: Index) -> Index:
            last = now
            if not requested:
                old = ix.find_creds(session, account, role)
                last = old.last_requested_at if old is not None else 0.0
            return ix.with_creds(CredsEntry(session, account, role, creds.expiration, now, last))

        self._index.update(change)

    def delete_creds(self, session: str, account: str, role: str) -> None:
        """Remove credentials, index entry and role lock file: ``store.delete_creds("corp", "111122223333", "Admin")``.

        The lock file stays when someone holds the lock (a fetch in progress needs it).
        """
        from ssocred.adapters import locks

        self._keyring.delete(creds_key(session, account, role))
        self._index.update(lambda ix: ix.without(None, frozenset({(session, account, role)})))
        locks.discard(self.role_lock(session, account, role))

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
        """The index file: ``state_dir()/index.json`` for the default service name in the OS keyring."""
        from ssocred.adapters.keyring_backend import store_kind

        return index_path(self.service, store_kind(self.service))

    def session_lock(self, name: str) -> Lock:
        """Guards read-check-refresh-write of a token: ``with store.session_lock("corp"): ...``."""
        return self._lock("session", (name,), f"SSO session '{name}'")

    def login_lock(self, name: str) -> Lock:
        """One interactive login per session at a time: ``with store.login_lock("corp"): ...``."""
        return self._lock("login", (name,), f"the login of '{name}'")

    def role_lock(self, session: str, account: str, role: str) -> Lock:
        """Guards fetch-write of one role's credentials: ``with store.role_lock("corp", "1", "Admin"):``."""
        return self._lock("role", (session, account, role), f"role '{role}' in {account}")

    @property
    def _index(self) -> IndexFile:
        # Resolved on each use so that a changed SSOCRED_STATE_DIR is honoured.
        return IndexFile(self.index_path(), self.timeout)

    def _lock(self, kind: str, parts: tuple[str, ...], what: str) -> Lock:
        from ssocred.adapters.locks import Lock

        return Lock(lock_dir() / self._lock_name(kind, parts), what)

    def _lock_name(self, kind: str, parts: tuple[str, ...]) -> str:
        import hashlib  # deferred: loading OpenSSL costs the start-up of every caller

        digest = hashlib.sha256("\0".join((self.service, kind, *parts)).encode()).hexdigest()[:16]
        return f"{kind}-{_UNSAFE.sub('_', ':'.join(parts)).strip('.')[:40] or '_'}-{digest}.lock"

    def _read(self, key: str, owner: str) -> str | None:
        """``KeyringIO.read``; without a keyring, a session a stopped memory-store daemon held needs a login."""
        try:
            return self._keyring.read(key, owner=owner)
        except NoKeyring as exc:
            from ssocred.adapters.memory_keyring import gone_error

            raise (gone_error(self.service, owner) or exc) from None

    def _journaled_roles(self, session: str) -> set[tuple[str, str, str]]:
        """Roles of ``session`` with a journaled generation (a write may have died before indexing)."""
        roles = {_role_of(key) for key in self._keyring.journal_keys()}
        return {r for r in roles if r is not None and r[0] == session}

    def _sweep_role_locks(self) -> int:
        """Remove role lock files that no indexed role of this store names; held ones stay."""
        from ssocred.adapters import locks

        directory = lock_dir()
        wanted = {self._lock_name("role", c.key) for c in self._index.read().creds}
        removed = 0
        for name in sorted(os.listdir(directory)):
            # Another service's role lock may go too: removal is safe for whoever takes it next.
            if name.startswith("role-") and name.endswith(".lock") and name not in wanted:
                removed += locks.discard(locks.Lock(directory / name))
        return removed


def _session_entry(name: str, token: Token, now: float) -> SessionEntry:
    """The index entry of a stored token (no refresh in flight)."""
    return SessionEntry(
        name=name,
        expires_at=token.expires_at,
        refreshable=token.refreshable(now),
        registration_expires_at=token.registration.expires_at if token.registration else None,
        updated_at=now,
    )


def _role_of(key: str) -> tuple[str, str, str] | None:
    """``(session, account, role)`` of a credentials key, else None: ``_role_of("creds:c:1:R") == ("c", "1", "R")``.

    Split from the right: a legacy session name is a start URL, which has colons of its own.
    """
    if not key.startswith("creds:"):
        return None
    fields = key[len("creds:"):].rsplit(":", 2)
    return (fields[0], fields[1], fields[2]) if len(fields) == 3 else None


def _env_timeout() -> float:
    """``$SSOCRED_KEYRING_TIMEOUT`` in seconds when it is a positive number, else 30."""
    try:
        value = float(os.environ.get("SSOCRED_KEYRING_TIMEOUT") or 30)
    except ValueError:
        return 30.0
    return value if value > 0 else 30.0
