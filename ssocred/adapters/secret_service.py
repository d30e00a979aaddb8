"""keyring's Secret Service backend on one D-Bus connection per process instead of one per call.

keyring's ``SecretService.Keyring`` connects to the session bus and opens an encrypted session
(a Diffie-Hellman exchange) for every call, and the store makes several calls in a row (a
chunked item is a head and its parts; a write reads the head first). ``PooledSecretService`` is
that backend with the same items (same collection, attributes and labels: keyring's own
``_query`` and ``appid``); it keeps idle connections, each with its session, for the next call.
A call runs on a connection no other call uses at the time. A failure on a reused connection
(the service restarted, the bus went away) is retried once on a new one; answers such as "no
such item" or "locked" are not.

Example: ``keyring.set_keyring(PooledSecretService.like(keyring.get_keyring()))``
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import secretstorage
from keyring.backends import SecretService
from keyring.compat import properties
from keyring.errors import InitError, KeyringLocked, PasswordDeleteError
from secretstorage.util import open_session

T = TypeVar("T")

#: Idle connections kept per backend: one serves a process; a few serve the daemon's parallel jobs.
_IDLE_MAX = 4
#: What the service answers on a healthy connection: passed on as they are, never retried.
_ANSWERS = (
    PasswordDeleteError, KeyringLocked, secretstorage.ItemNotFoundException, secretstorage.LockedException,
    secretstorage.PromptDismissedException,
)


class _Link:
    """One D-Bus connection to the session bus and, once a secret is read or written, its session."""

    def __init__(self) -> None:
        self.address = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
        self.pid = os.getpid()
        self.connection = secretstorage.dbus_init()
        self.session: Any = None

    def current(self) -> bool:
        """Still usable here: same process (not a fork's copy), same bus as the environment names now."""
        return self.pid == os.getpid() and self.address == os.environ.get("DBUS_SESSION_BUS_ADDRESS")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.connection.close()


class PooledSecretService(SecretService.Keyring):
    """keyring's Secret Service backend that reuses its D-Bus connections and sessions.

    Example: ``PooledSecretService().get_password("ssocred", "session:corp")``
    """

    #: As keyring names its own backend (``ssocred status`` and ``doctor`` show it).
    name = "SecretService Keyring"
    #: keyring's name of the backend this one stands in for (what the state dir remembers).
    KEYRING_NAME = "keyring.backends.SecretService.Keyring"

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._idle: list[_Link] = []
        self._guard = threading.Lock()

    @properties.classproperty
    def priority(cls) -> float:
        """Never a candidate of keyring's detection: ssocred puts it in place of keyring's own backend."""
        raise RuntimeError("chosen by ssocred in place of keyring.backends.SecretService.Keyring")

    @classmethod
    def like(cls, original: Any) -> PooledSecretService:
        """This backend with ``original``'s properties (scheme, preferred collection): ``like(get_keyring())``."""
        pooled = cls()
        pooled.__dict__.update({k: v for k, v in vars(original).items() if k not in ("_idle", "_guard")})
        return pooled

    def check_available(self) -> None:
        """RuntimeError unless a Secret Service answers on the bus (as keyring's viability check).

        Example: ``PooledSecretService().check_available()`` before relying on a remembered backend.
        """

        def check(link: _Link) -> None:
            if not secretstorage.check_service_availability(link.connection):
                raise RuntimeError("The Secret Service daemon is neither running nor activatable through D-Bus")

        try:
            self._on_link(check)
        except secretstorage.SecretStorageException as exc:
            raise RuntimeError(f"Unable to initialize SecretService: {exc}") from exc

    # --- keyring's calls, on a pooled connection --------------------------------------------

    def get_password(self, service: str, username: str) -> str | None:
        """The secret, as keyring's backend finds it: ``get_password("ssocred", "session:corp")``."""

        def get(link: _Link) -> str | None:
            for item in self._collection(link, secret=True).search_items(self._query(service, username)):
                self.unlock(item)
                return str(item.get_secret().decode("utf-8"))
            return None

        return self._on_link(get)

    def set_password(self, service: str, username: str, password: str) -> None:
        """Store or replace an item, as keyring's backend does: ``set_password("ssocred", "k", "v")``."""
        attributes = self._query(service, username, application=self.appid)
        label = f"Password for '{username}' on '{service}'"
        self._on_link(lambda link: self._collection(link, secret=True).create_item(
            label, attributes, password, replace=True))

    def delete_password(self, service: str, username: str) -> None:
        """Remove the first matching item, or PasswordDeleteError: ``delete_password("ssocred", "k")``."""

        def delete(link: _Link) -> None:
            for item in self._collection(link, secret=False).search_items(self._query(service, username)):
                item.delete()
                return
            raise PasswordDeleteError("No such password!")

        self._on_link(delete)

    def unlock(self, item: Any) -> None:
        """As keyring's, but asks the service to unlock an item only when it is locked (one round trip less).

        Example: ``self.unlock(item)`` before ``item.get_secret()``; KeyringLocked if it stays locked.
        """
        if item.is_locked():
            item.unlock()
            if item.is_locked():  # the user dismissed the prompt
                raise KeyringLocked("Failed to unlock the item!")

    # --- the pool ---------------------------------------------------------------------------

    def _collection(self, link: _Link, *, secret: bool) -> Any:
        """keyring's ``get_preferred_collection``, on ``link`` and with its session."""
        if secret and link.session is None:
            link.session = open_session(link.connection)
        try:
            if hasattr(self, "preferred_collection"):
                collection = secretstorage.Collection(link.connection, self.preferred_collection, link.session)
            else:
                collection = secretstorage.get_default_collection(link.connection, link.session)
        except secretstorage.SecretStorageException as exc:
            raise InitError(f"Failed to create the collection: {exc}.") from exc
        # An existing default collection is returned without the session: its items would each open one.
        collection.session = link.session
        if collection.is_locked():
            collection.unlock()
            if collection.is_locked():  # the user dismissed the prompt
                raise KeyringLocked("Failed to unlock the collection!")
        return collection

    def _on_link(self, call: Callable[[_Link], T]) -> T:
        """``call`` on an idle connection (or a new one); once more on a new one if a reused one fails."""
        link = self._checkout()
        reused = link is not None
        while True:
            if link is None:
                link = _Link()
            try:
                result = call(link)
            except _ANSWERS:
                self._checkin(link)
                raise
            except Exception:
                link.close()
                if not reused:
                    raise
                reused, link = False, None
                continue
            except BaseException:
                link.close()  # interrupted mid-call: the connection may hold half a reply
                raise
            self._checkin(link)
            return result

    def _checkout(self) -> _Link | None:
        with self._guard:
            while self._idle:
                link = self._idle.pop()
                if link.current():
                    return link
                link.close()  # another bus by now, or a forked child's copy of the parent's socket
        return None

    def _checkin(self, link: _Link) -> None:
        with self._guard:
            if len(self._idle) < _IDLE_MAX and link.current():
                self._idle.append(link)
                return
        link.close()
