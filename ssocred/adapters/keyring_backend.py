"""Which keyring backend the store uses: keyring's choice, never one that cannot keep secrets.

The detected backend's name (not a secret) is remembered in the state dir, so that later runs
can skip keyring's detection, which is most of its start-up cost. keyring's Secret Service
backend is used through ``ssocred.adapters.secret_service``: the same items, one D-Bus connection
per process rather than one per call.

Where there is no OS keyring (SSH hosts, WSL, containers, CI runners), a daemon started with
``--store memory`` keeps the items in its memory (``ssocred.adapters.memory_keyring``): in that daemon
the backend is its ``MemoryKeyring``, and a client that finds it answering (``"op": "store"``) reads and
writes the items through it, whatever keyring it could use itself, so that every process of the
user sees one store. ``store_kind`` tells which, asked once per process.
Example: ``use_remembered_backend(); usable_backend().name == "SecretService Keyring"``
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from pathlib import Path
from typing import Any

from ssocred import socket_protocol
from ssocred.errors import NoKeyring
from ssocred.socket_protocol import STORE_KEYRING, STORE_MEMORY

#: The way out when no keyring can keep secrets: every one there is.
NO_KEYRING_FIX = (
    "keep them in a daemon's memory instead: run `ssocred daemon --store memory` (in the background), then "
    "`ssocred login`; or, on a laptop with ssocred, run `ssocred forward THIS-HOST` to forward its daemon over "
    "SSH (README: \"Remote hosts, WSL and containers\"); or install and unlock a Secret Service such as "
    "gnome-keyring, or choose a backend with PYTHON_KEYRING_BACKEND"
)
#: This process is the daemon and keeps the store itself: ``STORE_KEYRING`` or ``STORE_MEMORY`` (None: a client).
_own: str | None = None
#: The memory-store daemon's items (in that daemon), or a client's way to them through its socket.
_memory: Any = None
#: Held while keyring's backend is detected or replaced, which two threads must not do at once.
_CHOOSING = threading.RLock()
#: Held while keyring's modules are imported: keyring and keyring.core import each other, and a thread that
#: imports one while another thread imports the other can meet it half-made (an ImportError of a name it has).
_IMPORTING = threading.Lock()
#: What the daemon answered, by (keyring service, socket path): asked once per process.
_asked: dict[tuple[str, str], str] = {}


def import_keyring() -> None:
    """Import keyring, one thread at a time: ``import_keyring()`` before ``import keyring`` in code that
    threads may run at once (the daemon's jobs and its start-up check)."""
    with _IMPORTING:
        import keyring.core  # noqa: F401 - with it keyring, its backend base, errors and fail backend


def use_store(store: str) -> None:
    """Make this process the daemon keeping the store in the OS keyring or in its own memory.

    Example: ``use_store(STORE_MEMORY)`` before the daemon reads or writes an item; called again, nothing changes.
    """
    global _own, _memory
    if store == _own:
        return
    if store == STORE_MEMORY:
        import_keyring()
        import keyring.core

        from ssocred.adapters.memory_keyring import MemoryKeyring

        _memory = MemoryKeyring()
        keyring.core.set_keyring(_memory)  # nothing in this process may reach another keyring
    _own = store


def store_kind(service: str | None = None) -> str:
    """Where ``service``'s items are kept for this process: ``"memory"`` (a memory-store daemon) or ``"keyring"``.

    The daemon knows; a client asks the daemon on the socket once (no daemon, or one that keeps them
    in the OS keyring: ``"keyring"``). Example: ``store_kind("ssocred") == "memory"`` beside
    ``ssocred daemon --store memory``.
    """
    if _own is not None:
        return _own
    service = service or socket_protocol.keyring_service()
    key = (service, socket_protocol.socket_path())
    found = _asked.get(key)
    if found is None:
        found = _asked[key] = _ask_store(service)
    return found


def _ask_store(service: str) -> str:
    """The daemon's answer to ``"op": "store"`` for ``service``; ``"keyring"`` without one."""
    quote = socket_protocol.quote
    backend = os.environ.get("PYTHON_KEYRING_BACKEND", "")
    line = (f'{{"v": {socket_protocol.PROTOCOL_VERSION}, "op": {quote(socket_protocol.OP_STORE)}, '
            f'"service": {quote(service)}, "backend": {quote(backend)}}}\n')
    try:
        reply = socket_protocol.exchange(line.encode("utf-8"))
    except UnicodeEncodeError:
        return STORE_KEYRING  # undecodable bytes in a name: no daemon could have matched it anyway
    if reply is None or reply[0] != 0:
        return STORE_KEYRING
    import json

    try:
        answer = json.loads(reply[1])
    except ValueError:
        return STORE_KEYRING
    return STORE_MEMORY if isinstance(answer, dict) and answer.get("store") == STORE_MEMORY else STORE_KEYRING


def usable_backend(service: str | None = None) -> Any:
    """The backend for ``service``'s items: a memory-store daemon's memory when one keeps them, else
    keyring's chosen backend, or NoKeyring (a StoreError) when it cannot keep secrets: ``usable_backend().name``.
    """
    if store_kind(service) == STORE_MEMORY:
        return _memory_backend()
    import_keyring()
    import keyring
    from keyring.backends import chainer, fail, null

    with _CHOOSING:  # keyring's detection is not thread-safe: the daemon's threads may all start here at once
        kr = _pooled(keyring.get_keyring())
    empty_chain = isinstance(kr, chainer.ChainerBackend) and not kr.backends
    if isinstance(kr, (fail.Keyring, null.Keyring)) or empty_chain or _unchosen_plaintext(kr):
        raise NoKeyring(f"no usable OS keyring (keyring picked {kr.name!r})", fix=NO_KEYRING_FIX)
    if not isinstance(kr, chainer.ChainerBackend):
        _remember(getattr(kr, "KEYRING_NAME", None) or f"{type(kr).__module__}.{type(kr).__name__}")
    return kr


def _memory_backend() -> Any:
    """The daemon's own ``MemoryKeyring``, or in a client the ``DaemonKeyring`` that reaches it."""
    global _memory
    if _memory is None:
        from ssocred.adapters.memory_keyring import DaemonKeyring

        _memory = DaemonKeyring()
    return _memory


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
    import_keyring()
    import keyring.core

    if keyring.core.load_config():
        return
    try:
        with _CHOOSING:
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
