"""A local HTTP server that answers like a broken network: captive portals, proxies, WAFs, black holes.

It listens on 127.0.0.1 and answers every request (any path, any method) the way its ``mode``
says; point ``AWS_ENDPOINT_URL_SSO`` or ``AWS_ENDPOINT_URL_SSO_OIDC`` at ``server.url``:

* ``html-200``: a captive portal's sign-in page, status 200;
* ``truncated-json``: status 200, ``application/json``, half a JSON object;
* ``empty-json``: status 200, ``{}``;
* ``echo-json``: status 400 with an AWS-shaped error (``x-amzn-ErrorType: BadRequestException``)
  whose message quotes every request header, as a WAF that reflects headers does;
* ``echo-html``: status 403, an HTML page quoting every request header;
* ``proxy-403``: status 403, a proxy's HTML "access denied" page;
* ``hang``: accepts the connection, reads the request and never answers.

Example: ``with HostileServer("html-200") as server: env["AWS_ENDPOINT_URL_SSO"] = server.url``
"""

from __future__ import annotations

import http.server
import threading
import time
from types import TracebackType

MODES = ("html-200", "truncated-json", "empty-json", "echo-json", "echo-html", "proxy-403", "hang")

_PORTAL_PAGE = b"""<!DOCTYPE html><html><head><title>Guest Wi-Fi</title></head>
<body><h1>Welcome</h1><form action="/login"><input name="room"><button>Connect</button></form></body></html>"""
_PROXY_PAGE = b"""<html><head><title>403 Forbidden</title></head><body><h1>Access Denied</h1>
<p>The requested URL has been blocked by the corporate proxy. Contact the help desk.</p></body></html>"""


class HostileServer:
    """One hostile server in a thread; ``requests`` counts what it received, ``headers`` keeps it."""

    def __init__(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        self.mode = mode
        self.requests = 0
        self.headers: list[str] = []
        self._release = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                server.requests += 1
                server.headers.append("; ".join(f"{k}: {v}" for k, v in self.headers.items()))
                if server.mode == "hang":
                    server._release.wait(120)
                    return
                status, ctype, body, extra = server._reply(self)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def _reply(self, handler: http.server.BaseHTTPRequestHandler) -> tuple[int, str, bytes, dict[str, str]]:
        headers = "; ".join(f"{k}: {v}" for k, v in handler.headers.items())
        if self.mode == "html-200":
            return 200, "text/html; charset=utf-8", _PORTAL_PAGE, {}
        if self.mode == "truncated-json":
            return 200, "application/json", b'{"roleCredentials": {"accessKeyId": "ASIA', {}
        if self.mode == "empty-json":
            return 200, "application/json", b"{}", {}
        if self.mode == "echo-json":
            import json

            body = json.dumps({"message": f"Request blocked by policy. Request headers: {headers}"}).encode()
            return 400, "application/json", body, {"x-amzn-ErrorType": "BadRequestException"}
        if self.mode == "echo-html":
            page = f"<html><body><h1>Blocked</h1><pre>{headers}</pre></body></html>".encode()
            return 403, "text/html", page, {}
        return 403, "text/html", _PROXY_PAGE, {}

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        # A request still in the listen backlog (a loaded machine's server thread not yet scheduled when
        # the client gave up) was asked all the same: let the server take it before counting stops.
        deadline = time.monotonic() + 5
        while self.requests == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        self._release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
