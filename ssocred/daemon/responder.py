"""The daemon's answers: one request line in, ``ssocred process``'s output (or a refresh) out, for its own user.

``Responder.serve`` checks the peer's uid, reads the request, answers it exactly as the no-daemon
path would (``model.sso.process_text``/``SsocredError.stderr_line``) and keeps a slow answer's
client waiting with keep-alive bytes (``KeepAlive``). The socket itself is ``daemon.server``'s.
Example: ``Responder().answer(request_line)`` is ``(0, '{"Version": 1, ...}', ("corp", "1", "Admin"))``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ssocred import socket_protocol
from ssocred.errors import LoginRequired, SsocredError
from ssocred.socket_protocol import FALLBACK, PROTOCOL_VERSION

if TYPE_CHECKING:
    from ssocred.adapters.store import Store
    from ssocred.model.chain import Target
    from ssocred.model.sso import RoleCredentials

log = logging.getLogger("ssocred.daemon.server")

#: How long a connected client may take to send its request.
REQUEST_TIMEOUT = 5.0
MAX_REQUEST = 64 * 1024
#: An answer ready sooner than this needs no keep-alive byte ...
KEEPALIVE_FIRST = 0.1
#: ... a slower one gets one this often (the client gives up after a second of silence).
KEEPALIVE_INTERVAL = 0.25

Role = tuple[str, str, str]
#: An answer to one more kind of request: the decoded request in, ``(code, text)`` out.
Op = Callable[[dict[str, object]], tuple[int, str]]


class _ClientMustRun(Exception):
    """The request is the client's to run: a login on its terminal, say."""


class Responder:
    """Answers requests that use the daemon's own keyring service and backend: ``Responder().answer(line)``.

    A memory-store daemon (``any_backend``) answers its service's requests whatever the client's backend.
    """

    def __init__(self) -> None:
        self.service = socket_protocol.keyring_service()
        self.backend = os.environ.get("PYTHON_KEYRING_BACKEND", "")
        #: A memory-store daemon holds the only copy of its items: it answers clients of any backend.
        self.any_backend = False
        # One keyring read or fetch at a time: boto3 sessions are not thread-safe, gnome-keyring
        # fails lookups ("prompt dismissed") when one process opens many connections at once, and
        # a burst of clients for a cold role waits here, then takes the first one's result.
        self._loading = threading.Lock()
        self._memo: dict[Role, tuple[float, RoleCredentials]] = {}
        self._keepalive = KeepAlive()
        #: More requests by ``op`` (the container endpoint's): each answers ``(code, text)``.
        self.ops: dict[str, Op] = {}
        #: ``time.monotonic()`` of the last request (socket or container endpoint): an idle daemon may leave.
        self.last_request = time.monotonic()

    def serve(self, conn: socket.socket) -> None:
        """Check the peer, read one request, send the reply: ``responder.serve(conn)``."""
        uid = peer_uid(conn)
        self.last_request = time.monotonic()
        line = admitted(conn, uid, f"uid {uid}")
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
        send_reply(conn, code, text)
        if code == 0 and role is not None:
            self.used(role)

    def answer(self, line: bytes) -> tuple[int, str, Role | None]:
        """``(code, text, role)`` for one request line; ``FALLBACK`` when the client must run it."""
        from ssocred import process_args
        from ssocred.model.chain import target_key
        from ssocred.model.sso import process_text
        from ssocred.usecases.chain import target_for

        try:
            req = json.loads(line)
        except ValueError:
            return FALLBACK, "malformed request\n", None
        if not isinstance(req, dict) or req.get("v") != PROTOCOL_VERSION:
            return FALLBACK, "unknown protocol version\n", None
        if req.get("service") != self.service or (req.get("backend") != self.backend and not self.any_backend):
            return FALLBACK, "the client uses another keyring service or backend\n", None
        op = req.get("op", "process")
        if op == "refresh":
            code, text = self._refresh(req)
            return code, text, None
        other = self.ops.get(op) if isinstance(op, str) else None
        if other is not None:
            code, text = other(req)
            return code, text, None
        if op != "process":
            return FALLBACK, "unknown request\n", None
        argv, config, cwd = req.get("argv"), req.get("config"), req.get("cwd")
        if not (isinstance(argv, list) and all(isinstance(a, str) for a in argv)
                and isinstance(config, str) and isinstance(cwd, str)):
            return FALLBACK, "malformed request\n", None
        role: Role | None = None
        try:
            request = process_args.parse(argv)
            if request.help:
                return FALLBACK, "help is printed by the client\n", None
            config_path = Path(os.path.join(cwd, config))
            target, may_login = target_for(request, config_path)
            role = target_key(target)
            creds = self._credentials(target, may_login=may_login, config_path=config_path)
        except _ClientMustRun as exc:
            return FALLBACK, f"{exc}\n", None
        except SsocredError as exc:
            return exc.exit_code, exc.stderr_line(), role
        except Exception as exc:
            # A bug must not take the daemon down; the client's own run shows what it is.
            log.error("a request failed with %s (%s)", type(exc).__name__, where(exc))
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
            log.error("a refresh failed with %s (%s)", type(exc).__name__, where(exc))
            return FALLBACK, "the daemon failed\n"
        reg = token.registration
        logs.redact_all([token.access_token, token.refresh_token, reg.client_secret if reg else None])
        log.debug("session %s: refresh asked by a client answered in %.1f ms", session,
                  (time.monotonic() - began) * 1000)
        return 0, json.dumps({"fingerprint": fingerprint(token)}) + "\n"

    def credentials(self, target: Target, config_path: Path | None = None) -> RoleCredentials:
        """Fresh credentials for ``target`` as ``process`` gets them, never a login: ``responder.credentials(t)``."""
        self.last_request = time.monotonic()
        return self._credentials(target, may_login=False, config_path=config_path)

    def used(self, role: Role) -> None:
        """Count a request for ``role``, so the daemon pre-fetches it: ``responder.used(role)``."""
        from ssocred.adapters.store import Store
        from ssocred.usecases.credentials import record_use

        record_use(Store(self.service), *role)

    def logged_in(self, session: str) -> bool:
        """Whether the store still holds ``session`` (an unreadable index counts as yes): ``logged_in("corp")``."""
        from ssocred.adapters.store import Store

        try:
            return session in Store(self.service).index().sessions
        except SsocredError:
            return True  # a passing index failure must not end every grant of the session

    def _credentials(self, target: Target, *, may_login: bool, config_path: Path | None) -> RoleCredentials:
        from ssocred.adapters.store import Store
        from ssocred.model.chain import target_key
        from ssocred.usecases.chain import credentials_for

        role = target_key(target)
        store = Store(self.service)
        creds = self._remembered(store, role)
        if creds is not None:
            return creds
        with self._loading:
            creds = self._remembered(store, role)  # loaded by the thread before us
            if creds is None:
                try:
                    creds = credentials_for(store, target, config_path=config_path)
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
        return peer_credentials(conn)[1]
    # macOS and the BSDs: struct xucred {u_int cr_version; uid_t cr_uid; ...} at level SOL_LOCAL (0).
    raw = conn.getsockopt(0, getattr(socket, "LOCAL_PEERCRED", 1), 76)
    return int(struct.unpack_from("2I", raw)[1])


def peer_credentials(conn: socket.socket) -> tuple[int, int]:
    """``(pid, uid)`` of a Unix socket's peer, on Linux (``SO_PEERCRED``): ``peer_credentials(conn)[1] == 1000``."""
    pid, uid, _gid = struct.unpack("iII", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    return int(pid), int(uid)


def send_reply(conn: socket.socket, code: int, text: str) -> None:
    """Send ``<code> <length>\\n<text>``, the reply format of ``socket_protocol``: ``send_reply(conn, 0, out)``."""
    data = text.encode()
    with contextlib.suppress(OSError):  # the client gave up: nothing to tell it
        conn.sendall(b"%d %d\n%s" % (code, len(data), data))


def admitted(conn: socket.socket, uid: int, peer: str, where: str = "") -> bytes | None:
    """The request line of a peer of the daemon's own user; None after refusing another user (logged, with
    ``peer`` and ``where``) or when nothing whole arrives in time: ``line = admitted(conn, peer_uid(conn), "uid 0")``.
    """
    if uid != os.getuid():
        log.warning("%srefused a connection from %s: the daemon answers uid %d only", where, peer, os.getuid())
        send_reply(conn, FALLBACK, "refused: not the daemon's user\n")
        return None
    conn.settimeout(REQUEST_TIMEOUT)
    return read_line(conn)


def read_line(conn: socket.socket) -> bytes | None:
    """The request line, or None when the client sends nothing whole in time: ``line = read_line(conn)``."""
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


def where(exc: BaseException | None) -> str:
    """Where an exception was raised, ``file:line``: its message may quote a secret."""
    tb = exc.__traceback__ if exc is not None else None
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return f"{os.path.basename(tb.tb_frame.f_code.co_filename)}:{tb.tb_lineno}" if tb else "?"
