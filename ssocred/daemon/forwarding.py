"""The daemon's forwarded sockets: one listener per saved forward, answering allowed roles to another host.

``ssh -R`` connects a socket on a remote host to ``<runtime dir>/forward/<name>.sock``. The only
request there is ``"op": "role"`` (``ssocred.socket_protocol``): the remote ``ssocred`` has resolved
its profile itself, so the daemon reads none of that host's files. It answers a role when the
forward's allow-list covers it and a session it holds matches (by start URL, else by name), and
logs every request with its peer (the local ``ssh`` process that carries it). A refresh, a login,
an item of the store or a container grant is never asked for here.

Example: ``forwarding = Forwarding(responder); forwarding.reload() == ["build-box"]``
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from typing import TYPE_CHECKING

from ssocred.daemon.responder import KeepAlive, admitted, peer_credentials, peer_uid, send_reply, where
from ssocred.errors import AccessDenied, LoginRequired, ServiceError, SsocredError, UsageError
from ssocred.socket_protocol import PROTOCOL_VERSION

if TYPE_CHECKING:
    from ssocred.daemon.responder import Responder
    from ssocred.model.forward import Forward

log = logging.getLogger("ssocred.daemon.forward")

#: The socket op that re-reads the saved forwards.
OP_RELOAD = "forward-reload"
BACKLOG = 64


class Forwarding:
    """The forwards' listeners of one daemon: ``Forwarding(responder).reload()`` listens for the saved ones."""

    def __init__(self, responder: Responder) -> None:
        self.responder = responder
        self._listeners: dict[str, _Listener] = {}
        self._lock = threading.Lock()
        self._start_urls: dict[tuple[str, float], str] = {}
        self.keepalive = KeepAlive()

    def reload(self) -> list[str]:
        """Listen for every saved forward (new allow-lists apply at once), stop the removed ones: their names."""
        from ssocred.adapters import forwards

        wanted = {f.name: f for f in forwards.load()}
        with self._lock:
            for name in [n for n in self._listeners if n not in wanted]:
                self._listeners.pop(name).close()
                log.info("forward %s: removed", name)
            for name, forward in wanted.items():
                listener = self._listeners.get(name)
                if listener is not None:
                    listener.forward = forward
                    continue
                try:
                    self._listeners[name] = _Listener(self, forward, forwards.socket_path(name))
                except (OSError, SsocredError) as exc:
                    log.error("forward %s: cannot listen (%s)", name, exc.strerror if isinstance(exc, OSError)
                              else exc.line())
                    continue
                log.info("forward %s: listening on %s for %s", name, self._listeners[name].path,
                         ", ".join(str(rule) for rule in forward.rules))
            return sorted(self._listeners)

    def serve_op(self, req: dict[str, object]) -> tuple[int, str]:
        """The ``forward-reload`` op of the daemon's own socket: ``(0, '{"listening": [...]}')``."""
        try:
            names = self.reload()
        except SsocredError as exc:
            return exc.exit_code, json.dumps({"message": exc.message, "fix": exc.fix}) + "\n"
        return 0, json.dumps({"listening": names}) + "\n"

    def close(self) -> None:
        """Stop every listener and remove its socket: ``forwarding.close()``."""
        with self._lock:
            for listener in self._listeners.values():
                listener.close()
            self._listeners.clear()

    def answer(self, forward: Forward, line: bytes, peer: str) -> tuple[int, str]:
        """``(code, text)`` for one request on ``forward``'s socket; every request is logged with ``peer``."""
        from ssocred.model.config import SsoTarget
        from ssocred.model.sso import process_text

        try:
            req = json.loads(line)
        except ValueError:
            req = None
        fields = ("session", "start_url", "region", "account", "role")
        if (not isinstance(req, dict) or req.get("v") != PROTOCOL_VERSION or req.get("op") != "role"
                or not all(isinstance(req.get(k), str) for k in fields)):
            log.warning("forward %s: refused a request that is not a role request, from %s", forward.name, peer)
            return _line(UsageError("the forwarded daemon answers role requests only",
                                    fix="use the same ssocred version on both hosts"))
        account, role = str(req["account"]), str(req["role"])
        asked = f"role {role} in {account}"
        if not forward.allows(account, role):
            log.warning("forward %s: refused %s (not on its allow-list), from %s", forward.name, asked, peer)
            return _line(AccessDenied(
                f"the forwarded daemon does not allow {asked} on forward '{forward.name}'",
                fix=f"where it runs: ssocred forward HOST --name {forward.name} --allow {account}:{role}"))
        try:
            session = self._session(str(req["session"]), str(req["start_url"]))
            creds = self.responder.credentials(SsoTarget(session, account, role))
        except LoginRequired as exc:
            log.info("forward %s: %s from %s needs a login there (%s)", forward.name, asked, peer, exc.line())
            return _line(LoginRequired(f"the forwarded daemon cannot answer {asked}: {exc.message}",
                                       fix="run `ssocred login` on the machine the daemon runs on"))
        except SsocredError as exc:
            log.info("forward %s: %s from %s failed: %s", forward.name, asked, peer, exc.line())
            return _line(exc)
        except Exception as exc:
            log.error("forward %s: a request failed with %s (%s)", forward.name, type(exc).__name__, where(exc))
            return _line(ServiceError("the forwarded daemon failed", fix="see its log on the machine it runs on"))
        log.info("forward %s: answered %s of session %s to %s", forward.name, asked, session, peer)
        self.responder.used((session, account, role))
        return 0, process_text(creds)

    def _session(self, name: str, start_url: str) -> str:
        """The held session for a remote request: the one at ``start_url`` (``name``'s first), else ``name``."""
        from ssocred.adapters.store import Store

        store = Store(self.responder.service)
        sessions = store.index().sessions
        if not start_url:
            if name in sessions:
                return name
        else:
            wanted = start_url.rstrip("/")
            for session in sorted(sessions, key=lambda s: s != name):
                # A session's start URL changes only with a new login, which changes its index entry.
                seen = (session, sessions[session].updated_at)
                url = self._start_urls.get(seen)
                if url is None:
                    token = store.load_session(session)
                    url = token.start_url.rstrip("/") if token else ""
                    self._start_urls = {k: v for k, v in self._start_urls.items() if k[0] != session}
                    self._start_urls[seen] = url
                if url == wanted:
                    return session
        raise LoginRequired(f"it holds no session {'for ' + start_url if start_url else 'named ' + name}",
                            fix="run `ssocred login` on the machine the daemon runs on")


class _Listener:
    """One forward's socket and its accept thread."""

    def __init__(self, owner: Forwarding, forward: Forward, path: str) -> None:
        self.owner, self.forward, self.path = owner, forward, path
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # a socket of this daemon's directory that a killed daemon left
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(path)
        except OSError:
            sock.close()
            raise
        finally:
            os.umask(old)
        sock.listen(BACKLOG)
        sock.settimeout(0.2)
        self._sock = sock
        self._inode = os.stat(path).st_ino
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name=f"ssocred-forward-{forward.name}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == self._inode:
                os.unlink(self.path)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                time.sleep(0.1)
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(None)
            forward = self.forward
            pid, uid = peer_credentials(conn) if hasattr(socket, "SO_PEERCRED") else (0, peer_uid(conn))
            peer = _describe_peer(pid, uid)
            self.owner.responder.last_request = time.monotonic()
            line = admitted(conn, uid, peer, where=f"forward {forward.name}: ")
            if line is None:
                return
            with self.owner.keepalive.beating(conn):
                code, text = self.owner.answer(forward, line, peer)
            send_reply(conn, code, text)


def _line(error: SsocredError) -> tuple[int, str]:
    return error.exit_code, error.stderr_line()


def _describe_peer(pid: int, uid: int) -> str:
    """``pid 4242 (ssh -R ... build-box)``: who carries the request, from ``/proc`` where there is one."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = fh.read(4096).split(b"\0")
        command = " ".join(a.decode("utf-8", "replace") for a in argv if a)[:200]
    except OSError:
        command = ""
    return f"pid {pid} uid {uid}" + (f" ({command})" if command else "")
