"""The daemon's Unix socket: answers ``ssocred process`` for its own user, one thread per client.

The socket is ``socket_protocol.socket_path()`` in a 0700 directory, created 0600, or the one systemd
passes (socket activation, fd 3). Each connection is checked first: a peer with another uid
gets a refusal and nothing else. The wire protocol is described in ``ssocred.socket_protocol``; the
answer is the no-daemon path's output, byte for byte (``daemon.responder``).
Clients that need an SSO token refreshed ask here too (``"op": "refresh"``), so that only the
daemon ever spends a refresh token while it runs. While an answer is being prepared, the
client gets a keep-alive byte every quarter second: a silent daemon is a stopped one.

Example: ``server = start(); ...; server.close()``, or ``python -m ssocred.daemon.server --verbose``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import socket
import socketserver
import stat
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import cast

from ssocred import socket_protocol
from ssocred.adapters.paths import private_dir
from ssocred.daemon.container import DEFAULT_LISTEN, Endpoint
from ssocred.daemon.forwarding import OP_RELOAD, Forwarding
from ssocred.daemon.responder import Responder, where
from ssocred.errors import ServiceError, SsocredError
from ssocred.socket_protocol import STORE_KEYRING
from ssocred.usecases.container import OP_GRANT, OP_REVOKE

log = logging.getLogger("ssocred.daemon.server")

#: Room for many ``ssocred process`` calls starting at once (a parallel Terraform run, say).
BACKLOG = 128
#: systemd's first passed descriptor (``SD_LISTEN_FDS_START``).
LISTEN_FD = 3

class SocketInUse(SsocredError):
    """Another daemon answers on the socket: ``SocketInUse("another daemon answers on ...")``."""


class RunningServer:
    """A started server: ``server.path`` is its socket, ``server.close()`` stops it.

    Example: ``with contextlib.closing(start()) as server: print(server.path)``
    """

    def __init__(self, server: _Server, thread: threading.Thread, path: str, inode: int | None,
                 container: Endpoint | None = None, forwarding: Forwarding | None = None) -> None:
        self._server = server
        self.forwarding = forwarding
        self.responder = server.responder
        self._thread = thread
        self._inode = inode
        self.path = path
        self.container = container

    def close(self) -> None:
        """Stop accepting, and remove the socket file if this server created it: ``server.close()``."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        if self.container is not None:
            self.container.close()
        if self.forwarding is not None:
            self.forwarding.close()
        if self._inode is None:
            return  # systemd's socket: it stays for the next activation
        with contextlib.suppress(OSError):
            # Only our own file: a newer daemon may have replaced it meanwhile.
            if os.stat(self.path).st_ino == self._inode:
                os.unlink(self.path)


def start(path: str | None = None, container: tuple[str, int] | None = DEFAULT_LISTEN,
          store: str = STORE_KEYRING) -> RunningServer:
    """Listen on ``path`` (default ``socket_protocol.socket_path()``, or systemd's socket) in a thread.

    ``container`` is where the container credentials endpoint listens once a grant asks for it
    (None: no endpoint); ``store`` is where this daemon keeps secrets (``"memory"``: it also answers
    for the items, see ``daemon.items``). Example: ``start().path == socket_protocol.socket_path()``;
    SocketInUse if another daemon answers there.
    """
    from ssocred.adapters.keyring_backend import use_store
    from ssocred.daemon.items import register
    from ssocred.usecases import tokens

    tokens.serve_refreshes()  # this process answers refreshes: it must never ask itself for one
    use_store(store)  # and it keeps the store: it never asks itself where that is
    sock = _inherited_socket() if path is None else None
    inode = None
    if sock is not None:
        where = str(sock.getsockname())
    else:
        where = path or socket_protocol.socket_path()
        sock, inode = _bind(where)
    responder = Responder()
    register(responder, store)
    endpoint = None
    if container is not None:
        endpoint = Endpoint(container, responder)
        responder.ops[OP_GRANT] = responder.ops[OP_REVOKE] = endpoint.serve_op
    forwarding = Forwarding(responder)
    responder.ops[OP_RELOAD] = forwarding.serve_op
    try:
        forwarding.reload()
    except SsocredError as exc:
        log.error("no forward listens: %s", exc.line())
    server = _Server(sock, responder)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="ssocred-socket", daemon=True
    )
    # Logged first: whoever has the first answer finds this line in the log already.
    log.info("answering ssocred process on %s%s", where, " (socket activation)" if inode is None else "")
    thread.start()
    return RunningServer(server, thread, where, inode, endpoint, forwarding)


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, sock: socket.socket, responder: Responder) -> None:
        super().__init__(str(sock.getsockname()), _Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.responder = responder

    def handle_error(self, request: object, client_address: object) -> None:
        exc = sys.exc_info()[1]
        log.error("a connection failed with %s (%s)", type(exc).__name__, where(exc))


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        cast(_Server, self.server).responder.serve(self.request)


def _inherited_socket() -> socket.socket | None:
    """systemd's listening socket (fd 3) when it was passed to this very process."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        return None
    count = os.environ.get("LISTEN_FDS", "")
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)  # not for our children: the socket is ours
    if not count.isdigit() or int(count) < 1:
        return None
    try:
        os.set_inheritable(LISTEN_FD, False)
        sock = socket.socket(fileno=LISTEN_FD)
    except OSError:
        sock = None
    if sock is None or sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
        if sock is not None:
            sock.detach()
        raise ServiceError(f"descriptor {LISTEN_FD} passed by systemd is not a Unix stream socket",
                           fix="use ListenStream=<path> in ssocred.socket")
    return sock


def _bind(path: str) -> tuple[socket.socket, int]:
    """A listening socket at ``path``, replacing a stale one; its inode identifies our file."""
    private_dir(Path(socket_protocol.bindable(path)).parent)
    with _startup_lock(path):
        _remove_stale(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            # 0600 from the moment it exists: no window for another user to connect.
            old = os.umask(0o177)
            try:
                sock.bind(path)
            finally:
                os.umask(old)
            os.chmod(path, 0o600)
            sock.listen(BACKLOG)
            return sock, os.stat(path).st_ino
        except OSError as exc:
            sock.close()
            raise ServiceError(f"cannot listen on {path}: {exc.strerror or exc}",
                               fix="set SSOCRED_RUNTIME_DIR to a short, writable path") from None


@contextlib.contextmanager
def _startup_lock(path: str) -> Iterator[None]:
    """Two daemons starting at once must not both take the stale socket for theirs."""
    fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _remove_stale(path: str) -> None:
    """Unlink a socket nobody listens on (a killed daemon's); SocketInUse if one answers."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except FileNotFoundError:
        return
    except ConnectionRefusedError:
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise SocketInUse(f"{path} exists and is not a socket", fix="remove it") from None
        os.unlink(path)
        log.info("replaced the stale socket %s", path)
        return
    except OSError:
        pass  # a full backlog or a timeout: someone is there, just busy
    finally:
        probe.close()
    raise SocketInUse(f"another ssocred daemon answers on {path}",
                      fix="stop it first (systemctl --user stop ssocred), or leave it running")


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM or Ctrl-C, printing ``{"socket": PATH}`` once ready.

    Example: ``python -m ssocred.daemon.server --verbose`` (logs each answer).
    """
    from ssocred.adapters import logs

    logs.setup(None)
    if "--verbose" in (sys.argv[1:] if argv is None else argv):
        logging.getLogger("ssocred").setLevel(logging.DEBUG)
    try:
        server = start()
    except SsocredError as exc:
        sys.stderr.write(exc.stderr_line())
        return exc.exit_code
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(json.dumps({"socket": server.path}), flush=True)
    while not stop.wait(0.5):
        pass
    server.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
