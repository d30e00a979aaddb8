"""The HTTP server: one port for sso-oidc, the SSO portal, STS and the control endpoints."""

from __future__ import annotations

import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

from ssocred.emulator import authorize, control, errors, federation, oidc, portal, sts
from ssocred.emulator.directory import Directory, generate, seeded
from ssocred.emulator.settings import Settings
from ssocred.emulator.state import State
from ssocred.emulator.wire import Request, Response

HOST = "127.0.0.1"
_API_STYLES = frozenset({"oidc", "portal", "sts"})
_MAX_BODY = 1 << 20


@dataclass(frozen=True)
class Route:
    """What serves one method and path: the counted operation, the error style and the handler."""

    operation: str | None
    style: str
    handler: Callable[[State, Request], Response]
    #: Names the operation from the request itself, for paths that serve several (STS's ``POST /``).
    classify: Callable[[Request], str | None] | None = None

    def operation_of(self, request: Request) -> str | None:
        """The counted operation of ``request``: ``ROUTES[("POST", "/")].operation_of(req) == "AssumeRole"``."""
        return self.classify(request) if self.classify is not None else self.operation


ROUTES: dict[tuple[str, str], Route] = {
    ("POST", "/client/register"): Route("RegisterClient", "oidc", oidc.register_client),
    ("POST", "/device_authorization"): Route("StartDeviceAuthorization", "oidc", oidc.start_device_authorization),
    ("POST", "/token"): Route("CreateToken", "oidc", oidc.create_token),
    ("GET", "/authorize"): Route("Authorize", "page", authorize.authorize),
    ("POST", "/authorize"): Route(None, "page", authorize.authorize_decision),
    ("GET", "/device"): Route(None, "page", authorize.device_page),
    ("POST", "/device"): Route(None, "page", authorize.device_decision),
    ("GET", "/federation/credentials"): Route("GetRoleCredentials", "portal", portal.get_role_credentials),
    ("GET", "/federation"): Route("Federation", "page", federation.federation),
    ("GET", "/assignment/accounts"): Route("ListAccounts", "portal", portal.list_accounts),
    ("GET", "/assignment/roles"): Route("ListAccountRoles", "portal", portal.list_account_roles),
    ("POST", "/logout"): Route("Logout", "portal", portal.logout),
    ("POST", "/"): Route(None, "sts", sts.handle, sts.operation),
    ("GET", "/"): Route(None, "page", control.index),
    ("GET", "/_stats"): Route(None, "control", control.stats),
    ("POST", "/_reset"): Route(None, "control", control.reset),
    ("POST", "/_control"): Route(None, "control", control.control),
    ("POST", "/_revoke"): Route(None, "control", control.revoke),
    ("POST", "/_directory"): Route(None, "control", control.directory),
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, state: State, verbose: bool) -> None:
        super().__init__((HOST, port), _Handler)
        self.state = state
        self.verbose = verbose
        self.base_url = f"http://{HOST}:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        """Disable Nagle: a small response split over two writes would otherwise stall ~40 ms."""
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def version_string(self) -> str:
        """The Server header."""
        return "ssocred-emulator"

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def log_message(self, format: str, *args: object) -> None:
        """Silence the default access log: its request line can carry codes in the query."""

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            raise ValueError("request body too large")
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        state = self.server.state
        request_id = str(uuid.uuid4())
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            self._send(Response(400, b"bad request body"), split.path, request_id)
            return
        route = ROUTES.get((method, split.path))
        if route is None:
            error = errors.ApiError("UnknownOperationException", 404, f"No route for {method} {split.path}")
            self._send(errors.render("control", error, request_id), split.path, request_id)
            return
        request = Request(
            method=method,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            base_url=self.server.base_url,
            request_id=request_id,
        )
        self._send(_handle(state, route, request), split.path, request_id)

    def _send(self, response: Response, path: str, request_id: str) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("x-amzn-RequestId", request_id)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)
        if self.server.verbose:
            sys.stderr.write(f"{self.command} {path} {response.status}\n")
            sys.stderr.flush()


def _handle(state: State, route: Route, request: Request) -> Response:
    """Count, delay, maybe inject a fault, then run the handler; all before any state change."""
    operation = route.operation_of(request)
    if operation:
        state.count(operation)
    if route.style not in _API_STYLES:
        return _run(state, route, request)
    state.enter(operation)
    try:
        return _answer(state, route, request)
    finally:
        state.leave(operation)


def _answer(state: State, route: Route, request: Request) -> Response:
    latency = state.settings.latency_ms
    if latency:
        time.sleep(latency / 1000)
    fault = state.draw_fault()
    if fault:
        return errors.render(route.style, errors.injected(route.style, fault), request.request_id)
    return _run(state, route, request)


def _run(state: State, route: Route, request: Request) -> Response:
    try:
        return route.handler(state, request)
    except errors.ApiError as error:
        return errors.render(route.style, error, request.request_id)
    except Exception as exc:
        # Frames and the exception type only: a message could quote a token or secret.
        frames = "".join(traceback.format_tb(exc.__traceback__))
        sys.stderr.write(f"internal error in {request.method} {request.path}:\n{frames}{type(exc).__name__}\n")
        failure = errors.ApiError("InternalServerException", 500, "Internal server error", "server_error")
        return errors.render(route.style, failure, request.request_id)


class Emulator:
    """An in-process emulator: ``with Emulator(Settings(token_ttl=60)).start() as emu: print(emu.url)``."""

    def __init__(
        self,
        settings: Settings | None = None,
        directory: Directory | None = None,
        *,
        port: int = 0,
        seed: int | None = None,
        verbose: bool = False,
    ) -> None:
        """Bind 127.0.0.1:``port`` (0 picks a free port); serving starts with ``start()``."""
        directory = directory or generate(3, 2, seeded("directory", seed))
        self.state = State(settings or Settings(), directory, seed)
        self._server = _Server(port, self.state, verbose)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321``."""
        return self._server.base_url

    def start(self) -> Emulator:
        """Serve in a background thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="ssocred-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
