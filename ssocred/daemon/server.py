"""The daemon's Unix socket: answers ``ssocred process`` for its own user, one thread per client.

The socket is ``socket_protocol.socket_path()`` in a 0700 directory, created 0600, or the one systemd
passes (socket activation, fd 3). Each connection is checked first: a peer with another uid
gets a refusal and nothing else. The wire protocol is described in ``ssocred.socket_protocol``; the
answer is the no-daemon path's output, byte for byte (``model.sso.process_text``/``SsocredError.stderr_line``).
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
import struct
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, cast

from ssocred import socket_protocol
from ssocred.adapters.paths import private_dir
from ssocred.errors import LoginRequired, ServiceError, SsocredError
from ssocred.socket_protocol import FALLBACK, PROTOCOL_VERSION

if TYPE_CHECKING:
    from ssocred.adapters.store import Store
    from ssocred.model.sso import RoleCredentials

log = logging.getLogger("ssocred.daemon.server")

#: Room for many ``ssocred process`` calls starting at once (a parallel Terraform run, say).
BACKLOG = 128
#: How long a connected client may take to send its request.
REQUEST_TIMEOUT = 5.0
MAX_REQUEST = 64 * 1024
#: systemd's first passed descriptor (``SD_LISTEN_FDS_START``).
LISTEN_FD = 3
#: An answer ready sooner than this needs no keep-alive byte ...
KEEPALIVE_FIRST = 0.1
#: ... a slower one gets one this often (the client gives up after a second of silence).
KEEPALIVE_INTERVAL = 0.25

Role = tuple[str, str, str]


class SocketInUse(SsocredError):
    """Another daemon answers on the socket: ``SocketInUse("another daemon answers on ...")``."""


class _ClientMustRun(Exception):
    """The request is the client's to run: a login on its terminal, say."""


class RunningServer:
    """A started server: ``server.path`` is its socket, ``server.close()`` stops it.

    Example: ``with contextlib.closing(start()) as server: print(server.path)``
    """

    def __init__(self, server: _Server, thread: threading.Thread, path: str, inode: int | None) -> None:
        self._server = server
        self._thread = thread
        self._inode = inode
        self.path = path

    def close(self) -> None:
        """Stop accepting, and remove the socket file if this server created it: ``server.close()``."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        if self._inode is None:
            return  # systemd's socket: it stays for the next activation
        with contextlib.suppress(OSError):
            # Only our own file: a newer daemon may have replaced it meanwhile.
            if os.stat(self.path).st_ino == self._inode:
                os.unlink(self.path)


def start(path: str | None = None) -> RunningServer:
    """Listen on ``path`` (default ``socket_protocol.socket_path()``, or systemd's socket) in a thread.

    Example: ``start().path == socket_protocol.socket_path()``; SocketInUse if another daemon answers there.
    """
    from ssocred.usecases import tokens

    tokens.serve_refreshes()  # this process answers refreshes: it must never ask itself for one
    sock = _inherited_socket() if path is None else None
    inode = None
    if sock is not None:
        where = str(sock.getsockname())
    else:
        where = path or socket_protocol.socket_path()
        sock, inode = _bind(where)
    server = _Server(sock, Responder())
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="ssocred-socket", daemon=True
    )
    thread.start()
    log.info("answering ssocred process on %s%s", where, " (socket activation)" if inode is None else "")
    return RunningServer(server, thread, where, inode)


class Responder:
    """Answers requests that use the daemon's own keyring service and backend: ``Responder().answer(line)``."""

    def __init__(self) -> None:
        self.service = socket_protocol.keyring_service()
        self.backend = os.environ.get("PYTHON_KEYRING_BACKEND", "")
        # One keyring read or fetch at a time: boto3 sessions are not thread-safe, gnome-keyring
        # fails lookups ("prompt dismissed") when one process opens many connections at once, and
        # a burst of clients for a cold role waits here, then takes the first one's result.
        self._loading = threading.Lock()
        self._memo: dict[Role, tuple[float, RoleCredentials]] = {}
        self._keepalive = KeepAlive()

    def serve(self, conn: socket.socket) -> None:
        """Check the peer, read one request, send the reply: ``responder.serve(conn)``."""
        uid = peer_uid(conn)
        if uid != os.getuid():
            log.warning("refused a connection from uid %d: the daemon answers uid %d only", uid, os.getuid())
            _send(conn, FALLBACK, "refused: not the daemon's user\n")
            return
        conn.settimeout(REQUEST_TIMEOUT)
        line = _read_line(conn)
        if line is None:
            return
        began = time.monotonic()
        with self._keepalive.beating(conn):
            code, text, role = self.answer(line)
        what = " ".join(role) if role else "a request"
        # Logged before the reply goes out: whoever has the answer finds it in the log already.
        if code == FALLBACK:
            log.debug("left %s to the client: %s", what, text.strip())
        else:
            # An error line names what failed and the fix, never a secret (SsocredError's contract).
            log.debug("answered %s: exit %d in %.1f ms%s", what, code, (time.monotonic() - began) * 1000,
                      f" ({text.strip()})" if code else "")
        _send(conn, code, text)
        if code == 0 and role is not None:
            from ssocred.adapters.store import Store
            from ssocred.usecases.credentials import record_use

            record_use(Store(self.service), *role)

    def answer(self, line: bytes) -> tuple[int, str, Role | None]:
        """``(code, text, role)`` for one request line; ``FALLBACK`` when the client must run it."""
        from ssocred import process_args
        from ssocred.model.sso import process_text
        from ssocred.usecases.credentials import for_request

        try:
            req = json.loads(line)
        except ValueError:
            return FALLBACK, "malformed request\n", None
        if not isinstance(req, dict) or req.get("v") != PROTOCOL_VERSION:
            return FALLBACK, "unknown protocol version\n", None
        argv, config, cwd = req.get("argv"), req.get("config"), req.get("cwd")
        if not (isinstance(argv, list) and all(isinstance(a, str) for a in argv)
                and isinstance(config, str) and isinstance(cwd, str)):
            return FALLBACK, "malformed request\n", None
        if req.get("service") != self.service or req.get("backend") != self.backend:
            return FALLBACK, "the client uses another keyring service or backend\n", None
        op = req.get("op", "process")
        if op == "refresh":
            code, text = self._refresh(req)
            return code, text, None
        if op != "process":
            return FALLBACK, "unknown request\n", None
        role: Role | None = None
        try:
            request = process_args.parse(argv)
            if request.help:
                return FALLBACK, "help is printed by the client\n", None
            role, may_login = for_request(request, Path(os.path.join(cwd, config)))
            creds = self._credentials(role, may_login=may_login)
        except _ClientMustRun as exc:
            return FALLBACK, f"{exc}\n", None
        except SsocredError as exc:
            return exc.exit_code, exc.stderr_line(), role
        except Exception as exc:
            # A bug must not take the daemon down; the client's own run shows what it is.
            log.error("a request failed with %s (%s)", type(exc).__name__, _where(exc))
            return FALLBACK, "the daemon failed\n", None
        return 0, process_text(creds), role

    def _refresh(self, req: dict[str, object]) -> tuple[int, str]:
        """Refresh an SSO token for a client, under the session lock as any refresh: ``(code, text)``."""
        from ssocred.adapters import logs
        from ssocred.adapters.store import Store
        from ssocred.model.sso import fingerprint
        from ssocred.usecases import tokens

        session, seen, force = req.get("session"), req.get("seen"), req.get("force")
        if not (isinstance(session, str) and session and isinstance(seen, str) and isinstance(force, bool)):
            return FALLBACK, "malformed request\n"
        began = time.monotonic()
        try:
            token = tokens.refresh_here(Store(self.service), session, seen=seen or None, force=force)
        except SsocredError as exc:
            log.info("session %s: a client's refresh failed: %s", session, exc.line())
            return exc.exit_code, json.dumps({"message": exc.message, "fix": exc.fix}) + "\n"
        except Exception as exc:
            log.error("a refresh failed with %s (%s)", type(exc).__name__, _where(exc))
            return FALLBACK, "the daemon failed\n"
        reg = token.registration
        logs.redact_all([token.access_token, token.refresh_token, reg.client_secret if reg else None])
        log.debug("session %s: refresh asked by a client answered in %.1f ms", session,
                  (time.monotonic() - began) * 1000)
        return 0, json.dumps({"fingerprint": fingerprint(token)}) + "\n"

    def _credentials(self, role: Role, *, may_login: bool) -> RoleCredentials:
        from ssocred.adapters.store import Store
        from ssocred.usecases.credentials import role_credentials

        store = Store(self.service)
        creds = self._remembered(store, role)
        if creds is not None:
            return creds
        with self._loading:
            creds = self._remembered(store, role)  # loaded by the thread before us
            if creds is None:
                try:
                    creds = role_credentials(store, *role)
                except LoginRequired:
                    if may_login:
                        raise _ClientMustRun("a login is needed, on the client's terminal") from None
                    raise
                self._remember(store, role, creds)
        return creds

    def _remembered(self, store: Store, role: Role) -> RoleCredentials | None:
        """Credentials read before, while the index says the keyring item is unchanged.

        A keyring read costs a D-Bus round trip and more than the rest of the answer; the index
        changes with every save or delete of the item (a fetch elsewhere, a logout).
        """
        from ssocred.model.sso import credentials_fresh

        memo = self._memo.get(role)
        if memo is None:
            return None
        try:
            entry = store.index().find_creds(*role)
        except SsocredError:
            return None
        stamp, creds = memo
        if entry is None or entry.updated_at != stamp or not credentials_fresh(creds, time.time()):
            return None
        return creds

    def _remember(self, store: Store, role: Role, creds: RoleCredentials) -> None:
        from ssocred.adapters import logs

        # Held in memory now: make sure no log line can ever show them, whatever a message quotes.
        logs.redact_all([creds.secret_access_key, creds.session_token])
        try:
            entry = store.index().find_creds(*role)
        except SsocredError:
            entry = None
        if entry is not None and entry.expiration == creds.expiration:
            self._memo[role] = (entry.updated_at, creds)
        else:
            self._memo.pop(role, None)


class KeepAlive:
    """Sends ``+`` to every connection whose answer is still being prepared, from one thread.

    Example: ``with keepalive.beating(conn): code, text, role = responder.answer(line)``
    """

    def __init__(self) -> None:
        self._due: dict[socket.socket, float] = {}
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def beating(self, conn: socket.socket) -> Iterator[None]:
        """Keep ``conn``'s client waiting patiently while the block runs; no byte follows the block."""
        with self._changed:
            self._due[conn] = time.monotonic() + KEEPALIVE_FIRST
            if self._thread is None:
                self._thread = threading.Thread(target=self._beat, name="ssocred-keepalive", daemon=True)
                self._thread.start()
            self._changed.notify()
        try:
            yield
        finally:
            with self._changed:  # a byte being sent finishes before the answer can follow it
                self._due.pop(conn, None)

    def _beat(self) -> None:
        with self._changed:
            while True:
                if not self._due:
                    self._changed.wait()
                    continue
                now = time.monotonic()
                soonest = min(self._due.values())
                if soonest > now:
                    self._changed.wait(soonest - now)
                    continue
                for conn, due in list(self._due.items()):
                    if due <= now:
                        with contextlib.suppress(OSError):  # a full buffer or a gone client: nothing to keep
                            conn.send(b"+", socket.MSG_DONTWAIT)
                        self._due[conn] = now + KEEPALIVE_INTERVAL


def peer_uid(conn: socket.socket) -> int:
    """The uid of the process at the other end of a Unix socket: ``peer_uid(conn) == os.getuid()``."""
    if hasattr(socket, "SO_PEERCRED"):
        _pid, uid, _gid = struct.unpack("iII", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        return int(uid)
    # macOS and the BSDs: struct xucred {u_int cr_version; uid_t cr_uid; ...} at level SOL_LOCAL (0).
    raw = conn.getsockopt(0, getattr(socket, "LOCAL_PEERCRED", 1), 76)
    return int(struct.unpack_from("2I", raw)[1])


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, sock: socket.socket, responder: Responder) -> None:
        super().__init__(str(sock.getsockname()), _Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.responder = responder

    def handle_error(self, request: object, client_address: object) -> None:
        exc = sys.exc_info()[1]
        log.error("a connection failed with %s (%s)", type(exc).__name__, _where(exc))


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        cast(_Server, self.server).responder.serve(self.request)


def _send(conn: socket.socket, code: int, text: str) -> None:
    data = text.encode()
    with contextlib.suppress(OSError):  # the client gave up: nothing to tell it
        conn.sendall(b"%d %d\n%s" % (code, len(data), data))


def _read_line(conn: socket.socket) -> bytes | None:
    """The request line, or None when the client sends nothing whole in time."""
    data = b""
    try:
        while b"\n" not in data and len(data) < MAX_REQUEST:
            chunk = conn.recv(8192)
            if not chunk:
                return None
            data += chunk
    except OSError:
        return None
    line, nl, _ = data.partition(b"\n")
    return line if nl else None


def _where(exc: BaseException | None) -> str:
    """Where an exception was raised, ``file:line``: its message may quote a secret."""
    tb = exc.__traceback__ if exc is not None else None
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return f"{os.path.basename(tb.tb_frame.f_code.co_filename)}:{tb.tb_lineno}" if tb else "?"


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
