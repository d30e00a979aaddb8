"""Keyring access for the store: a timeout on every call, clear errors, and chunked values.

Chunk format. A value whose stored size is at most ``CHUNK_LIMIT`` (2,000) bytes is kept as
is under its own username. A larger value is split into parts of at most ``CHUNK_LIMIT``
bytes each, stored under ``<username>#<id>.<i>`` for ``i`` in ``1..n``, and the username
itself holds the head ``{"chunks": n, "id": "<8 hex>", "sha256": "<hex of the value>"}``.
The size counts UTF-16 as well as UTF-8 bytes, since Windows Credential Manager stores
UTF-16 and refuses blobs over 2,560 bytes.

A writer stores the new parts under a fresh ``id`` first and the head last, then removes the
previous parts, so a reader that takes no lock sees either the old value or the new one.
Writers of one item must be serialised (the store's session and role locks do that).

Example: ``KeyringIO("ssocred", 10.0).read("session:corp", owner="corp")``
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from ssocred.errors import StoreError

T = TypeVar("T")

#: Largest stored size of one keyring item, in UTF-8 and in UTF-16 bytes.
CHUNK_LIMIT = 2000
_READ_ATTEMPTS = 3


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
        return self._run("open", "the OS keyring", lambda: str(_usable_backend().name))

    def read(self, key: str, owner: str) -> str | None:
        """The value under ``key``, parts joined, or None: ``io.read("session:corp", owner="corp")``."""
        return self._run("read", key, lambda: self._read(key, owner))

    def write(self, key: str, value: str) -> None:
        """Store ``value``, in parts when large: ``io.write("session:corp", '{"accessToken": ...}')``."""
        self._run("write", key, lambda: self._write(key, value))

    def delete(self, key: str) -> None:
        """Remove an item and its parts; a missing one is fine: ``io.delete("session:corp")``."""
        self._run("delete", key, lambda: self._delete(key))

    # --- work done on the keyring thread ----------------------------------------------------

    def _read(self, key: str, owner: str) -> str | None:
        kr = _usable_backend()
        try:
            return self._read_parts(kr, key, owner)
        except UnicodeError:
            raise corrupt_error(key, owner) from None

    def _read_parts(self, kr: Any, key: str, owner: str) -> str | None:
        for _ in range(_READ_ATTEMPTS):
            text = _get(kr, self.service, key)
            if text is None:
                return None
            head = _head(text)
            if head is None:
                return str(text)
            count, chunk_id, digest = head
            found = [_get(kr, self.service, chunk_name(key, chunk_id, i)) for i in range(1, count + 1)]
            parts = [p for p in found if p is not None]
            if len(parts) == count:
                value = "".join(parts)
                if _sha256(value) == digest:
                    return value
            # A writer may have replaced the item between our reads: look at the head again.
            if _get(kr, self.service, key) == text:
                raise corrupt_error(key, owner)
        raise corrupt_error(key, owner)

    def _write(self, key: str, value: str) -> None:
        kr = _usable_backend()
        old_head = self._current_head(kr, key)
        if stored_size(value) <= CHUNK_LIMIT:
            kr.set_password(self.service, key, value)
        else:
            import secrets

            chunk_id = secrets.token_hex(4)
            while old_head is not None and chunk_id == old_head[1]:
                chunk_id = secrets.token_hex(4)
            parts = split_value(value)
            for i, part in enumerate(parts, start=1):
                kr.set_password(self.service, chunk_name(key, chunk_id, i), part)
            head = {"chunks": len(parts), "id": chunk_id, "sha256": _sha256(value)}
            kr.set_password(self.service, key, json.dumps(head, separators=(",", ":")))
        if old_head is not None:
            self._delete_parts(kr, key, old_head)

    def _delete(self, key: str) -> None:
        kr = _usable_backend()
        head = self._current_head(kr, key)
        _forget(kr, self.service, key)
        if head is not None:
            self._delete_parts(kr, key, head)

    def _current_head(self, kr: Any, key: str) -> tuple[int, str, str] | None:
        """The head now under ``key``, so its parts can be removed; None for plain or unreadable."""
        try:
            text = _get(kr, self.service, key)
        except UnicodeError:
            return None  # an unreadable item is overwritten or removed all the same
        return _head(text) if text is not None else None

    def _delete_parts(self, kr: Any, key: str, head: tuple[int, str, str]) -> None:
        count, chunk_id, _ = head
        for i in range(1, count + 1):
            _forget(kr, self.service, chunk_name(key, chunk_id, i))

    # --- timeout and error translation -----------------------------------------------------

    def _run(self, verb: str, what: str, work: Callable[[], T]) -> T:
        """Run ``work`` on a daemon thread; a keyring stuck behind a hidden prompt cannot hang us."""
        box: dict[str, Any] = {}
        # Imports cannot wait on a prompt, and under load they are slow: keep them off the clock.
        import keyring.core  # noqa: F401

        def target() -> None:
            try:
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


def _forget(kr: Any, service: str, username: str) -> None:
    from keyring.errors import PasswordDeleteError

    # keyring's way of saying "no such item": already gone is what we want.
    with contextlib.suppress(PasswordDeleteError):
        kr.delete_password(service, username)


def _usable_backend() -> Any:
    """keyring's chosen backend, or StoreError when it is one that cannot keep secrets."""
    import keyring
    from keyring.backends import chainer, fail, null

    kr = keyring.get_keyring()
    empty_chain = isinstance(kr, chainer.ChainerBackend) and not kr.backends
    if isinstance(kr, (fail.Keyring, null.Keyring)) or empty_chain or _unchosen_plaintext(kr):
        raise StoreError(
            f"no usable OS keyring (keyring picked {kr.name!r})",
            fix="install and unlock a Secret Service such as gnome-keyring, "
            "or choose a backend with PYTHON_KEYRING_BACKEND",
        )
    if not isinstance(kr, chainer.ChainerBackend):
        _remember(f"{type(kr).__module__}.{type(kr).__name__}")
    return kr


_REMEMBERED = "keyring-backend"
_remembered: str | None = None


def _remember(name: str) -> None:
    """Note the detected backend (not a secret) so that later runs can skip keyring's detection."""
    global _remembered
    if _remembered == name or os.environ.get("PYTHON_KEYRING_BACKEND"):
        return
    from ssocred import paths

    path = paths.state_dir() / _REMEMBERED
    try:
        if path.read_text(encoding="utf-8").strip() != name:
            raise FileNotFoundError
    except OSError:
        with contextlib.suppress(OSError):
            paths.private_dir(path.parent)
            paths.atomic_write(path, name.encode("utf-8"))
    _remembered = name


def use_remembered_backend() -> None:
    """Load the backend an earlier run detected, skipping detection (most of keyring's start-up).

    Only when neither ``PYTHON_KEYRING_BACKEND`` nor a keyringrc file chooses one; anything
    unexpected leaves keyring to detect as usual. Example: called first by ``ssocred process``.
    """
    global _remembered
    if os.environ.get("PYTHON_KEYRING_BACKEND"):
        return
    from ssocred import paths

    try:
        name = (paths.state_dir() / _REMEMBERED).read_text(encoding="utf-8").strip()
    except OSError:
        return
    import keyring.core

    if not name or keyring.core.load_config():
        return
    try:
        keyring.core.set_keyring(keyring.core.load_keyring(name))
    except Exception:  # a backend that no longer loads: detection decides
        return
    _remembered = name


def _unchosen_plaintext(kr: Any) -> bool:
    """A keyrings.alt file backend that keyring fell back to rather than one the user chose."""
    if not type(kr).__module__.startswith("keyrings.alt"):
        return False
    import keyring.core

    return not (os.environ.get("PYTHON_KEYRING_BACKEND") or keyring.core.load_config())


def _translate(exc: BaseException, verb: str, what: str) -> BaseException:
    """A one-line StoreError for a backend failure; never quotes a stored value."""
    if isinstance(exc, StoreError):
        return exc
    import keyring.errors

    names = {cls.__name__ for cls in type(exc).__mro__}
    if isinstance(exc, keyring.errors.KeyringLocked) or "LockedException" in names:
        return StoreError(
            f"the OS keyring is locked (could not {verb} {what})",
            fix="unlock it (log in to the desktop session, or open your keyring manager) and retry",
        )
    if isinstance(exc, keyring.errors.NoKeyringError):
        return StoreError(
            f"no usable OS keyring (could not {verb} {what})",
            fix="install and unlock a Secret Service such as gnome-keyring, "
            "or choose a backend with PYTHON_KEYRING_BACKEND",
        )
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
