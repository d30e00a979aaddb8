"""Keyring access for the store: a timeout on every call, clear errors, and chunked values.

Chunk format. A value whose stored size is at most ``CHUNK_LIMIT`` (2,000) bytes is kept as
is under its own username. A larger value is split into parts of at most ``CHUNK_LIMIT``
bytes each, stored under ``<username>#<id>.<i>`` for ``i`` in ``1..n``, and the username
itself holds the head ``{"chunks": n, "id": "<8 hex>", "sha256": "<hex of the value>"}``.
The size counts UTF-16 as well as UTF-8 bytes, since Windows Credential Manager stores
UTF-16 and refuses blobs over 2,560 bytes.

A writer records the new generation (key, id, part count, time) in the chunk journal
(``ssocred.adapters.chunkjournal``), stores its parts, switches the head, removes the previous parts
(highest index first) and only then forgets the previous generation's record. A reader that
takes no lock sees either the old value or the new one; a writer killed at any point leaves
only parts the journal names, which ``delete`` and ``sweep`` remove. Items written before the
journal existed (no record) are still read, replaced and deleted through their head.
Writers of one item must be serialised (the store's session and role locks do that).

Example: ``KeyringIO("ssocred", 10.0).read("session:corp", owner="corp")``
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, TypeVar

from ssocred.adapters.keyring_backend import NO_KEYRING_FIX, import_keyring, store_kind, usable_backend
from ssocred.adapters.keyring_backend import use_remembered_backend as use_remembered_backend
from ssocred.errors import NoKeyring, SsocredError, StoreError

if TYPE_CHECKING:
    from ssocred.adapters.chunkjournal import Generation, Journal

T = TypeVar("T")

#: Largest stored size of one keyring item, in UTF-8 and in UTF-16 bytes.
CHUNK_LIMIT = 2000
#: Reads of a chunked item that a writer replaced meanwhile, before giving up.
_READ_ATTEMPTS = 5
#: Second looks at parts that are missing or wrong while the head stays the same, before "corrupt".
_SAME_HEAD_RECHECKS = 2
#: One keyring conversation at a time in this process: gnome-keyring fails lookups ("prompt
#: dismissed", items not found) when one process opens many connections at once. Held only around
#: keyring calls (and the chunk journal's lock taken with them), never around network calls or
#: the session and role locks, so a slow service or a waiting lock never holds up another session.
_SERIAL = threading.Lock()


def stored_size(value: str) -> int:
    """Bytes a backend may need for ``value``: ``stored_size("ab") == 4`` (UTF-16)."""
    return max(len(value.encode("utf-8")), len(value.encode("utf-16-le")))


def split_value(value: str, limit: int = CHUNK_LIMIT) -> list[str]:
    """Parts of ``value`` of at most ``limit`` stored bytes each: ``split_value("abc", 4) == ["ab", "c"]``."""
    parts: list[str] = []
    start = u8 = u16 = 0
    for pos, char in enumerate(value):
        c8 = len(char.encode("utf-8"))
        c16 = 4 if ord(char) > 0xFFFF else 2
        if max(u8 + c8, u16 + c16) > limit:
            parts.append(value[start:pos])
            start, u8, u16 = pos, 0, 0
        u8 += c8
        u16 += c16
    parts.append(value[start:])
    return parts


def chunk_name(key: str, chunk_id: str, index: int) -> str:
    """Username of one part: ``chunk_name("session:corp", "0a1b2c3d", 1) == "session:corp#0a1b2c3d.1"``."""
    return f"{key}#{chunk_id}.{index}"


def corrupt_error(key: str, owner: str) -> StoreError:
    """The error for an unreadable item: ``corrupt_error("session:corp", "corp").line()``."""
    if "://" in owner:  # a legacy session, keyed by its start URL
        logout = f"ssocred logout --profile <a profile with sso_start_url = {owner}>"
    else:
        logout = f"ssocred logout --sso-session {owner}"
    return StoreError(f"the stored item {key} is corrupt", fix=f"run: {logout} and log in again")


def _head(text: str) -> tuple[int, str, str] | None:
    """``(n, id, sha256)`` when ``text`` is a chunk head, else None (a plain value)."""
    if not text.startswith('{"chunks"'):
        return None
    try:
        data = json.loads(text)
        count, chunk_id, digest = data["chunks"], data["id"], data["sha256"]
    except (ValueError, KeyError, TypeError):
        return None
    if not (isinstance(count, int) and count > 0 and isinstance(chunk_id, str) and isinstance(digest, str)):
        return None
    return count, chunk_id, digest


def _sha256(value: str) -> str:
    import hashlib  # deferred: loading OpenSSL costs the start-up of every caller

    return hashlib.sha256(value.encode("utf-8")).hexdigest()


class KeyringIO:
    """One keyring service name, every call bounded by ``timeout`` seconds.

    Example: ``KeyringIO("ssocred", 10.0).write("creds:corp:111122223333:Admin", "{...}")``
    """

    def __init__(self, service: str, timeout: float) -> None:
        self.service = service
        self.timeout = timeout

    # --- public operations ----------------------------------------------------------------

    def backend_name(self) -> str:
        """The name of the usable backend, e.g. ``"SecretService Keyring"``."""
        return self._run("open", "the OS keyring", lambda: str(usable_backend(self.service).name))

    def read(self, key: str, owner: str) -> str | None:
        """The value under ``key``, parts joined, or None: ``io.read("session:corp", owner="corp")``."""
        return self._run("read", key, lambda: self._read(key, owner))

    def write(self, key: str, value: str) -> None:
        """Store ``value``, in parts when large: ``io.write("session:corp", '{"accessToken": ...}')``."""
        self._run("write", key, lambda: self._write(key, value))

    def delete(self, key: str) -> None:
        """Remove an item, its parts and every journaled generation; a missing one is fine.

        Example: ``io.delete("session:corp")``
        """
        self._run("delete", key, lambda: self._delete(key))

    def journal_keys(self) -> frozenset[str]:
        """Keys with a recorded generation of parts: ``"session:corp" in io.journal_keys()``."""
        return frozenset(g.key for g in self._journal().read())

    def sweep(self, grace: float) -> tuple[int, int]:
        """Remove recorded generations older than ``grace`` s that no head references.

        Returns ``(generations, parts)`` removed. A generation younger than ``grace`` may be a
        write in progress and is left alone. Example: ``io.sweep(600.0) == (0, 0)``.
        """
        cutoff = time.time() - grace
        stale: dict[str, list[Generation]] = {}
        for g in self._journal().read():
            if g.at <= cutoff:
                stale.setdefault(g.key, []).append(g)
        generations = parts = 0
        for key, gens in stale.items():
            done = self._run("sweep", key, functools.partial(self._sweep_key, key, gens))
            generations, parts = generations + done[0], parts + done[1]
        return generations, parts

    # --- work done on the keyring thread ----------------------------------------------------

    def _read(self, key: str, owner: str) -> str | None:
        kr = usable_backend(self.service)
        try:
            return self._read_parts(kr, key, owner)
        except UnicodeError:
            raise corrupt_error(key, owner) from None

    def _read_parts(self, kr: Any, key: str, owner: str) -> str | None:
        replaced = rechecks = 0
        while True:
            text = _get(kr, self.service, key)
            if text is None:
                return None
            head = _head(text)
            if head is None:
                return str(text)
            count, chunk_id, digest = head
            value = self._parts_of(kr, key, count, chunk_id)
            if value is not None and _sha256(value) == digest:
                return value
            # A writer may have replaced the item between our reads: look at the head again.
            if _get(kr, self.service, key) != text:
                replaced += 1
                if replaced >= _READ_ATTEMPTS:
                    raise corrupt_error(key, owner)
                continue
            # Same head. gnome-keyring can briefly fail to find an item it has just stored while
            # others are created and removed around it, so look again before calling it corrupt.
            rechecks += 1
            if rechecks > _SAME_HEAD_RECHECKS:
                raise corrupt_error(key, owner)
            time.sleep(0.05 * rechecks)

    def _parts_of(self, kr: Any, key: str, count: int, chunk_id: str) -> str | None:
        """One generation's parts joined, or None at the first one missing.

        Read highest index first, the order a writer deletes them in: a reader that got ahead
        of the deletion stays ahead, and one that is behind learns it at once.
        """
        parts: list[str] = []
        for i in range(count, 0, -1):
            part = _get(kr, self.service, chunk_name(key, chunk_id, i))
            if part is None:
                return None
            parts.append(part)
        return "".join(reversed(parts))

    def _write(self, key: str, value: str) -> None:
        from ssocred.adapters.chunkjournal import Generation

        kr = usable_backend(self.service)
        old_head = self._current_head(kr, key)
        journal = self._journal()
        chunked = stored_size(value) > CHUNK_LIMIT
        # A plain value replacing a plain value has no generation to record or to forget.
        recorded = journal.of(key) if chunked or old_head is not None else ()
        now = time.time()
        # A generation stored before the journal existed is recorded too, once, so that a
        # removal cut short below is finished by the sweep like any other.
        adding = [Generation(key, old_head[1], old_head[0], now)] if old_head else []
        adding = [g for g in adding if all(r.id != g.id for r in recorded)]
        if not chunked:
            journal.add(*adding)
            _set(kr, self.service, key, value)
        else:
            chunk_id = _fresh_id({g.id for g in (*recorded, *adding)})
            parts = split_value(value)
            journal.add(*adding, Generation(key, chunk_id, len(parts), now))
            for i, part in enumerate(parts, start=1):
                _set(kr, self.service, chunk_name(key, chunk_id, i), part)
            head = {"chunks": len(parts), "id": chunk_id, "sha256": _sha256(value)}
            _set(kr, self.service, key, json.dumps(head, separators=(",", ":")))
        if old_head is None:
            return
        count, old_id, _ = old_head
        try:
            self._delete_parts(kr, key, count, old_id)
        except Exception:
            return  # the new value is stored; the journal still names the old parts for the sweep
        journal.drop(key, {old_id})

    def _delete(self, key: str) -> None:
        kr = usable_backend(self.service)
        head = self._current_head(kr, key)
        _forget(kr, self.service, key)
        if head is not None:
            self._delete_parts(kr, key, head[0], head[1])
        journal = self._journal()
        recorded = journal.of(key)
        for g in recorded:
            if head is None or g.id != head[1]:
                self._delete_parts(kr, key, g.chunks, g.id)
        journal.drop(key, {g.id for g in recorded})

    def _sweep_key(self, key: str, candidates: list[Generation]) -> tuple[int, int]:
        kr = usable_backend(self.service)
        try:
            text = _get(kr, self.service, key)
        except UnicodeError:
            return 0, 0  # an unreadable head names no id: nothing can be known to be unreferenced
        head = _head(text) if text is not None else None
        stale = [g for g in candidates if head is None or g.id != head[1]]
        parts = sum(self._delete_parts(kr, key, g.chunks, g.id) for g in stale)
        self._journal().drop(key, {g.id for g in stale})
        return len(stale), parts

    def _journal(self) -> Journal:
        from ssocred.adapters.chunkjournal import Journal, journal_path

        # Resolved on each use, as the index is, so that a changed SSOCRED_STATE_DIR is honoured.
        # Half the keyring timeout: a stuck journal lock is named as such, not as a silent keyring.
        return Journal(journal_path(self.service, store_kind(self.service)), self.timeout / 2)

    def _current_head(self, kr: Any, key: str) -> tuple[int, str, str] | None:
        """The head now under ``key``, so its parts can be removed; None for plain or unreadable."""
        try:
            text = _get(kr, self.service, key)
        except UnicodeError:
            return None  # an unreadable item is overwritten or removed all the same
        return _head(text) if text is not None else None

    def _delete_parts(self, kr: Any, key: str, count: int, chunk_id: str) -> int:
        """Remove one generation's parts, highest index first; how many were there."""
        return sum(_forget(kr, self.service, chunk_name(key, chunk_id, i)) for i in range(count, 0, -1))

    # --- timeout and error translation -----------------------------------------------------

    def _run(self, verb: str, what: str, work: Callable[[], T]) -> T:
        """Run ``work`` on a daemon thread; a keyring stuck behind a hidden prompt cannot hang us."""
        box: dict[str, Any] = {}
        # Imports cannot wait on a prompt, and under load they are slow: keep them off the clock.
        import_keyring()

        def target() -> None:
            try:
                with _SERIAL:  # waiting for it counts against the timeout, as a slow keyring would
                    box["value"] = work()
            except BaseException as exc:  # re-raised on the calling thread below
                box["error"] = exc

        thread = threading.Thread(target=target, name="ssocred-keyring", daemon=True)
        thread.start()
        thread.join(self.timeout)
        if thread.is_alive():
            # The thread is left behind; should the keyring answer later, a write still lands,
            # which is as if it had been a little slower.
            raise StoreError(
                f"the OS keyring did not answer within {self.timeout:g} s ({verb} {what})",
                fix="unlock it (an unlock prompt may be waiting) or check that its service is running, "
                "then retry",
            )
        if "error" in box:
            raise _translate(box["error"], verb, what)
        value: T = box["value"]
        return value


def _get(kr: Any, service: str, username: str) -> str | None:
    try:
        value = kr.get_password(service, username)
    except Exception as exc:
        # The Secret Service finds an item, then fetches its secret: a writer that removes the
        # item in between makes it vanish, which is "no such item", not a failure.
        if type(exc).__name__ == "ItemNotFoundException":
            return None
        raise
    return None if value is None else str(value)


def _set(kr: Any, service: str, username: str, value: str) -> None:
    _again_if_lost(lambda: kr.set_password(service, username, value))


def _forget(kr: Any, service: str, username: str) -> bool:
    """Delete one item; whether it was there."""
    from keyring.errors import PasswordDeleteError

    try:
        _again_if_lost(lambda: kr.delete_password(service, username))
    except PasswordDeleteError:
        return False  # keyring's way of saying "no such item": already gone is what we want
    return True


def _again_if_lost(change: Callable[[], object]) -> None:
    """Make a change, once more after a pause if the Secret Service lost track of an item meanwhile.

    gnome-keyring can store an item and then briefly fail to find it while others are created
    and removed around it; storing again replaces it, and deleting again finds it or says it is gone.
    """
    try:
        change()
    except Exception as exc:
        if type(exc).__name__ != "ItemNotFoundException":
            raise
        time.sleep(0.05)
        change()


def _fresh_id(taken: Collection[str]) -> str:
    """A chunk id that no recorded or current generation of the item uses."""
    import secrets

    chunk_id = secrets.token_hex(4)
    while chunk_id in taken:
        chunk_id = secrets.token_hex(4)
    return chunk_id


def _translate(exc: BaseException, verb: str, what: str) -> BaseException:
    """A one-line StoreError for a backend failure; never quotes a stored value."""
    if isinstance(exc, SsocredError):
        return exc  # already one line of ours (a store error, a lock of the chunk journal)
    import keyring.errors

    names = {cls.__name__ for cls in type(exc).__mro__}
    if isinstance(exc, keyring.errors.KeyringLocked) or "LockedException" in names:
        return StoreError(
            f"the OS keyring is locked (could not {verb} {what})",
            fix="unlock it (log in to the desktop session, or open your keyring manager) and retry",
        )
    if isinstance(exc, keyring.errors.NoKeyringError):
        return NoKeyring(f"no usable OS keyring (could not {verb} {what})", fix=NO_KEYRING_FIX)
    if not isinstance(exc, Exception):
        return exc  # KeyboardInterrupt, SystemExit: not ours to reword
    # Only messages from keyring and D-Bus libraries are shown; they describe the failure,
    # not the data. Anything else may carry a value, so only its type is named.
    trusted = type(exc).__module__.split(".")[0] in {"keyring", "secretstorage", "jeepney", "dbus"}
    detail = " ".join(str(exc).split())[:200] if trusted else ""
    reason = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return StoreError(
        f"the OS keyring failed to {verb} {what} ({reason})",
        fix="check that the keyring service is running and unlocked, then retry",
    )
