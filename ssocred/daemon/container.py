"""The daemon's container credentials endpoint: role credentials over HTTP for any SDK (PROTOCOL §10.3).

``GET /role/<grant id>`` with ``Authorization: <token>`` answers ``{"AccessKeyId", "SecretAccessKey",
"Token", "Expiration", "AccountId"}`` from the same cache and singleflight as ``ssocred process``.
A missing token gets 401, a wrong one (or an unknown grant) 403, each with a fixed tiny body.
The listener starts with the first grant, on ``127.0.0.1`` and a port the kernel picks unless
``--container-listen`` names one: its URLs stay valid while the daemon runs, and grants end with
the daemon anyway. No log line holds a token: requests are logged by role and status only.

Example: ``endpoint = Endpoint(("127.0.0.1", 0), backend); endpoint.url(endpoint.issue(role))``
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Protocol

from ssocred.daemon.responder import where
from ssocred.errors import ServiceError, SsocredError, UsageError
from ssocred.model.chain import Chain, Target, chain_from_dict, target_key
from ssocred.model.config import SsoTarget
from ssocred.model.sso import RoleCredentials, container_output
from ssocred.usecases.container import OP_REVOKE, PATH_PREFIX, Grant, Grants, Role

log = logging.getLogger("ssocred.daemon.container")

#: Loopback only, on a port the kernel picks: no clash with anything, nothing reachable from outside.
DEFAULT_LISTEN = ("127.0.0.1", 0)
#: A client that sends nothing whole for this long is dropped (a thread per client is not to be hoarded).
REQUEST_TIMEOUT = 10.0
_UNAUTHORIZED = b'{"message": "unauthorized"}'
_FORBIDDEN = b'{"message": "forbidden"}'


class Backend(Protocol):
    """What the endpoint needs from the daemon: ``backend.credentials(SsoTarget("corp", "1", "Dev"))``."""

    def credentials(self, target: Target, config_path: Path | None = None) -> RoleCredentials:
        """Fresh credentials for ``target`` (an SSO role or a chain), from the cache or one fetch."""

    def used(self, role: Role) -> None:
        """Note that ``role`` was asked for, so the daemon pre-fetches it."""

    def logged_in(self, session: str) -> bool:
        """Whether ``session`` is still in the store (a logout ends its grants)."""


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT``, an IP address (IPv6 in brackets): ``parse_listen("169.254.170.2:80") == ("169.254.170.2", 80)``.

    The host goes into every URL handed to SDKs, so it must be one address, not ``0.0.0.0``.
    """
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        address = ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        raise UsageError(f"--container-listen {text!r} is not HOST:PORT with an IP address",
                         fix="e.g. --container-listen 127.0.0.1:0, or [::1]:9911") from None
    if not sep or not 0 <= number <= 65535 or address.is_unspecified:
        raise UsageError(f"--container-listen {text!r} needs one address and a port from 0 to 65535",
                         fix="e.g. --container-listen 127.0.0.1:0 (0: the kernel picks a free port)")
    return str(address), number


class Endpoint:
    """Grants and the HTTP listener that honours them; the listener starts with the first grant.

    Example: ``Endpoint(DEFAULT_LISTEN, backend).issue(("corp", "111122223333", "Dev")).token``
    """

    def __init__(self, listen: tuple[str, int], backend: Backend) -> None:
        self.listen = listen
        self.backend = backend
        self.grants = Grants()
        #: What each granted key stands for, and the config a chain's ``[services]`` are read from.
        self._targets: dict[Role, tuple[Target, Path | None]] = {}
        self._start_lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def issue(self, role: Role) -> Grant:
        """The role's grant, with the listener running: ``endpoint.issue(role)``; ServiceError if it cannot listen."""
        self._ensure_listening()
        return self.grants.issue(role)

    def url(self, grant: Grant) -> str:
        """The grant's ``AWS_CONTAINER_CREDENTIALS_FULL_URI``: ``http://127.0.0.1:41234/role/9f3c...``."""
        host, port = self.address()
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}{PATH_PREFIX}{grant.grant_id}"

    def address(self) -> tuple[str, int]:
        """Where the listener listens (the kernel's port once started): ``("127.0.0.1", 41234)``."""
        server = self._server
        if server is None:
            return self.listen
        bound = server.socket.getsockname()
        return str(bound[0]), int(bound[1])

    def close(self) -> None:
        """Stop listening; every grant ends with it: ``endpoint.close()``."""
        with self._start_lock:
            server, thread, self._server, self._thread = self._server, self._thread, None, None
        if server is not None and thread is not None:
            server.shutdown()
            server.server_close()
            thread.join()

    def _ensure_listening(self) -> None:
        with self._start_lock:
            if self._server is not None:
                return
            host, port = self.listen
            try:
                server = _Server(self.listen, self)
            except OSError as exc:
                raise ServiceError(f"the daemon cannot listen on {host}:{port} for containers: {exc.strerror or exc}",
                                   fix="pick another address with: ssocred daemon --container-listen HOST:PORT "
                                   "(an address must be on this machine, e.g. ip addr add 169.254.170.2/32 dev lo)"
                                   ) from None
            self._server = server
            self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5},
                                            name="ssocred-container", daemon=True)
            self._thread.start()
        bound = self.address()
        log.info("container credentials endpoint listening on http://%s:%d", *bound)

    def serve_op(self, req: dict[str, object]) -> tuple[int, str]:
        """Answer a socket request ``container`` (a grant) or ``container-revoke``: ``(code, JSON text)``.

        Example: ``endpoint.serve_op({"op": "container", "session": "corp", "account": "1", "role": "Dev"})``
        """
        from ssocred.adapters import logs

        session, account, name = req.get("session"), req.get("account"), req.get("role")
        if req.get("op") == OP_REVOKE:
            if not (isinstance(session, str) and _optional_text(account) and _optional_text(name)):
                return _error(UsageError("malformed container request"))
            count = self.grants.revoke(session, _text(account), _text(name))
            what = f"{account} {name}" if account and name else "every role"
            log.info("session %s: container grant of %s revoked (%d ended)", session, what, count)
            return 0, json.dumps({"revoked": count}) + "\n"
        if not all(isinstance(v, str) and v for v in (session, account, name)):
            return _error(UsageError("malformed container request"))
        role: Role = (str(session), str(account), str(name))
        served = _served(req, role)
        if served is None:
            return _error(UsageError("malformed container request"))
        try:
            # A missing login or access fails now, not inside a container.
            self.backend.credentials(*served)
            self._targets[role] = served
            grant = self.issue(role)
        except SsocredError as exc:
            return _error(exc)
        except Exception as exc:
            log.error("a container grant failed with %s (%s)", type(exc).__name__, where(exc))
            return _error(ServiceError("the daemon failed", fix="see its log"))
        logs.redact_all([grant.token])
        self.backend.used(role)
        log.info("container grant for %s in %s (session %s) handed out", role[2], role[1], role[0])
        return 0, json.dumps({"url": self.url(grant), "token": grant.token}) + "\n"

    def answer(self, grant_id: str, authorization: str | None) -> tuple[int, bytes, Role | None]:
        """``(status, body, role)`` for one request: 200 with credentials, 401/403 with nothing else."""
        if authorization is None:
            return 401, _UNAUTHORIZED, None
        role = self.grants.check(grant_id, authorization)
        if role is None:
            return 403, _FORBIDDEN, None
        if not self.backend.logged_in(role[0]):
            self.grants.revoke(role[0])
            log.info("session %s: logged out; its container grants ended", role[0])
            return 403, _FORBIDDEN, None
        try:
            creds = self.backend.credentials(*self._targets.get(role, (SsoTarget(*role), None)))
        except SsocredError as exc:
            # The SDK shows this to its user; an SsocredError's line never holds a secret.
            return 503, json.dumps({"code": exc.exit_code, "message": exc.line()}).encode(), role
        except Exception as exc:
            log.error("a container request failed with %s (%s)", type(exc).__name__, where(exc))
            return 500, b'{"message": "the daemon failed"}', role
        return 200, json.dumps(container_output(creds)).encode(), role


def _served(req: dict[str, object], role: Role) -> tuple[Target, Path | None] | None:
    """What a grant request asks to serve: the SSO role its key names, or the chain it carries (None: malformed)."""
    raw, config = req.get("chain"), req.get("config")
    if raw is None:
        return SsoTarget(*role), None
    if not (isinstance(raw, dict) and isinstance(config, str) and config):
        return None
    try:
        chain: Chain = chain_from_dict(raw)
    except (KeyError, ValueError, TypeError, SsocredError):
        return None
    return (chain, Path(config)) if target_key(chain) == role else None


def _optional_text(value: object) -> bool:
    return value is None or (isinstance(value, str) and bool(value))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _error(exc: SsocredError) -> tuple[int, str]:
    return exc.exit_code, json.dumps({"message": exc.message, "fix": exc.fix}) + "\n"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, listen: tuple[str, int], endpoint: Endpoint) -> None:
        import socket

        self.address_family = socket.AF_INET6 if ":" in listen[0] else socket.AF_INET
        self.endpoint = endpoint
        super().__init__(listen, _Handler)

    def server_bind(self) -> None:
        # No getfqdn() of the address (HTTPServer's default): a slow resolver must not stall a grant.
        import socketserver

        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)


class _Handler(BaseHTTPRequestHandler):
    server_version = "ssocred"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = REQUEST_TIMEOUT

    def do_GET(self) -> None:
        endpoint = self.server.endpoint  # type: ignore[attr-defined]
        path = self.path.split("?", 1)[0]
        grant_id = path[len(PATH_PREFIX):] if path.startswith(PATH_PREFIX) else ""
        status, body, role = endpoint.answer(grant_id, self.headers.get("Authorization"))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)
        if role is not None:
            log.debug("container request for %s: %d", " ".join(role), status)
            if status == 200:
                endpoint.backend.used(role)
        else:
            log.debug("container request refused: %d", status)

    def log_message(self, format: str, *args: object) -> None:
        pass  # the request line holds the grant id; do_GET logs what is worth logging
