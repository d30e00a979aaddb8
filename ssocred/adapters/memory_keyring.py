"""The memory store: keyring items kept only in a daemon's memory, for machines without an OS keyring.

``ssocred daemon --store memory`` makes ``MemoryKeyring`` its keyring (``keyring_backend.use_store``):
a dict, never written anywhere, so the store with its chunking and journal works unchanged inside
it. Other processes of the user reach those items through ``DaemonKeyring``, which sends each
get, set and delete to the daemon over its socket (``"op": "item-get" | "item-set" | "item-delete"``,
see ``ssocred.socket_protocol``); the daemon answers only its own user, and only for its own keyring
service. The non-secret index and chunk journal of the memory store are files of their own
(``index-memory.json``, ``chunks-memory.json``): a memory-store daemon starts them empty
(``start_empty``), and once it is gone they name what it held, so that the next command can say
that a login is needed (``gone_error``) rather than that no keyring is usable.

Example: ``MemoryKeyring().set_password("ssocred", "session:corp", "{...}")``
"""

from __future__ import annotations

import json
import os
import threading

from keyring.backend import KeyringBackend
from keyring.compat import properties
from keyring.errors import PasswordDeleteError

from ssocred import socket_protocol
from ssocred.adapters.store_index import Index, IndexFile, index_path
from ssocred.errors import LoginRequired, NoKeyring, SsocredError, StoreError
from ssocred.model.sso import login_command
from ssocred.socket_protocol import OP_ITEM_DELETE, OP_ITEM_GET, OP_ITEM_SET, STORE_MEMORY

#: How ``status``, ``doctor`` and ``login`` name this store.
NAME = "the memory of the ssocred daemon"
#: Starts a memory-store daemon again (named by every message about one that is gone).
START = "ssocred daemon --store memory"


class _NeverDetected(KeyringBackend):
    """A backend keyring's own detection never picks: ssocred chooses it, explicitly."""

    @properties.classproperty
    def priority(cls) -> float:
        """Never a candidate of keyring's detection (keyring takes the error as "not viable")."""
        raise RuntimeError("chosen by ssocred for its memory store only")


class MemoryKeyring(_NeverDetected):
    """The memory-store daemon's items, in a dict: ``MemoryKeyring().get_password("ssocred", "k") is None``."""

    name = NAME

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._items: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def get_password(self, service: str, username: str) -> str | None:
        """The value under ``(service, username)``, or None: ``kr.get_password("ssocred", "session:corp")``."""
        with self._lock:
            return self._items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        """Keep ``password`` under ``(service, username)``: ``kr.set_password("ssocred", "k", "v")``."""
        with self._lock:
            self._items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        """Forget an item; PasswordDeleteError when there is none, as keyring's contract says."""
        with self._lock:
            if self._items.pop((service, username), None) is None:
                raise PasswordDeleteError(username)

    def __len__(self) -> int:
        """How many items are held (chunk parts count one each): ``len(kr)``."""
        with self._lock:
            return len(self._items)


class DaemonKeyring(_NeverDetected):
    """A client's way to the memory-store daemon's items: ``DaemonKeyring().get_password("ssocred", "k")``."""

    name = NAME

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]

    def get_password(self, service: str, username: str) -> str | None:
        """The daemon's value under ``(service, username)``, or None."""
        value = _ask(OP_ITEM_GET, service, username).get("value")
        return value if isinstance(value, str) else None

    def set_password(self, service: str, username: str, password: str) -> None:
        """Hand ``password`` to the daemon to keep under ``(service, username)``."""
        if _ask(OP_ITEM_SET, service, username, password).get("stored") is not True:
            raise StoreError(f"the memory-store daemon did not keep {username}", fix=f"restart it ({START})")

    def delete_password(self, service: str, username: str) -> None:
        """Make the daemon forget an item; PasswordDeleteError when it held none."""
        if _ask(OP_ITEM_DELETE, service, username).get("deleted") is not True:
            raise PasswordDeleteError(username)


def _ask(op: str, service: str, username: str, value: str | None = None) -> dict[str, object]:
    """One item request to the daemon: its answer; NoKeyring when it is gone, its error when it refused."""
    request: dict[str, object] = {"v": socket_protocol.PROTOCOL_VERSION, "op": op, "service": service,
                                  "backend": os.environ.get("PYTHON_KEYRING_BACKEND", ""), "username": username}
    if value is not None:
        request["value"] = value
    try:
        line = (json.dumps(request) + "\n").encode("utf-8")
    except UnicodeEncodeError:
        raise StoreError(f"the item name {username!r} cannot be sent to the daemon", fix="use plain names") from None
    reply = socket_protocol.exchange(line)
    if reply is None:
        raise NoKeyring(f"the memory-store daemon that keeps the secrets did not answer ({op} {username})",
                        fix=f"start it again ({START}) and log in again")
    answer = socket_protocol.json_answer(
        *reply, StoreError("the memory-store daemon's answer is not understood",
                           fix="restart it with this version of ssocred"), f"the daemon refused {op} {username}")
    return answer


def stranded(service: str) -> list[str]:
    """Sessions the memory store's index names: held by a memory-store daemon (gone, when none answers).

    Example: ``stranded("ssocred") == ["corp"]`` after that daemon was killed; an unreadable index names none.
    """
    try:
        return sorted(IndexFile(index_path(service, STORE_MEMORY), 10.0).read().sessions)
    except SsocredError:
        return []


def gone_error(service: str, session: str) -> LoginRequired | None:
    """The error for ``session`` when the memory-store daemon that held it is gone, else None.

    Example: ``gone_error("ssocred", "corp").line()`` names the daemon to start and the login to run.
    """
    if session not in stranded(service):
        return None
    return LoginRequired(f"SSO session '{session}': the memory-store daemon that held it has stopped",
                         fix=f"start it again ({START}) and run: {login_command(session)}")


def forget_stranded(service: str, session: str, timeout: float = 10.0) -> bool:
    """Drop ``session`` and its roles from the index a stopped memory-store daemon left; whether it was there.

    Its secrets ended with that daemon: only the non-secret entries remain to clear (``ssocred logout``).
    Example: ``forget_stranded("ssocred", "corp")`` is True once, after that daemon was killed.
    """
    found: list[bool] = []

    def drop(ix: Index) -> Index:
        found.append(session in ix.sessions)
        return ix.without(session, frozenset(entry.key for entry in ix.creds_of(session)))

    IndexFile(index_path(service, STORE_MEMORY), timeout).update(drop)
    return bool(found and found[-1])


def start_empty(service: str, timeout: float) -> list[str]:
    """In a memory-store daemon that starts: forget what an earlier one held (it ended with it); those sessions.

    Example: ``start_empty("ssocred", 30.0) == ["corp"]`` after the previous daemon was killed.
    """
    from ssocred.adapters.chunkjournal import Journal, journal_path

    forgotten: list[str] = []

    def empty(ix: Index) -> Index:
        forgotten[:] = sorted(ix.sessions)
        return Index()

    IndexFile(index_path(service, STORE_MEMORY), timeout).update(empty)
    Journal(journal_path(service, STORE_MEMORY), timeout).update(lambda generations: [])
    return forgotten
