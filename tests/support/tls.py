"""TLS interception on 127.0.0.1: a CA made for the test, a portal look-alike and a CONNECT proxy.

Like a corporate proxy that inspects TLS: the proxy tunnels every CONNECT, whatever host it
names, to a local TLS server, which presents a certificate for the name the client asked for
(SNI), signed by the test CA, and answers every request as the SSO portal answers a bad token
(401 UnauthorizedException). Nothing ever dials out: every socket is on 127.0.0.1.

Example::

    ca = TestCA.create(tmp_path)
    with PortalLookalike(ca) as portal, ConnectProxy(portal.port) as proxy:
        env["HTTPS_PROXY"] = proxy.url  # a client trusting ca.pem sees a valid portal
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import select
import socket
import socketserver
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

LOCALHOST = "127.0.0.1"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@dataclass
class TestCA:
    """A self-signed CA whose certificate is written to ``pem_path``; it issues server certificates."""

    __test__ = False  # not a pytest test class

    directory: Path
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    issued: dict[str, tuple[Path, Path]] = field(default_factory=dict)

    @classmethod
    def create(cls, directory: Path, name: str = "ssocred test interception CA") -> TestCA:
        """A new CA in ``directory`` (its certificate in ``directory/ca.pem``)."""
        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False),
                           critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        ca = cls(directory, key, cert)
        ca.pem_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return ca

    @property
    def pem_path(self) -> Path:
        """The CA certificate (PEM): what ``AWS_CA_BUNDLE`` should point at."""
        return self.directory / "ca.pem"

    def issue(self, host: str) -> tuple[Path, Path]:
        """Certificate and key files (PEM) for ``host`` (its SAN), signed by this CA; made once per host."""
        if host in self.issued:
            return self.issued[host]
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(host))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                           critical=False)
            .sign(self.key, hashes.SHA256())
        )
        stem = self.directory / host.replace("/", "_")
        cert_path, key_path = stem.with_suffix(".crt"), stem.with_suffix(".key")
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(_pem_key(key))
        self.issued[host] = (cert_path, key_path)
        return cert_path, key_path


class _Quiet:
    """Servers that keep their failures to themselves (a client refusing our certificate is expected)."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore: the tests look at what was recorded, not at server tracebacks."""


class _PortalHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        server = self.server
        assert isinstance(server, _TlsHttpServer)
        try:
            self.request.do_handshake()
        except (ssl.SSLError, OSError) as exc:
            server.owner.handshake_errors.append(type(exc).__name__)
            raise
        super().setup()

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        server = self.server
        assert isinstance(server, _TlsHttpServer)
        server.owner.requests.append((self.command, self.path, self.headers.get("Host", "")))
        body = json.dumps({"message": "Session token not found or invalid"}).encode()
        self.send_response(401)
        self.send_header("x-amzn-ErrorType", "UnauthorizedException")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        """Silent."""


class _TlsHttpServer(_Quiet, socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    owner: PortalLookalike

    def get_request(self) -> tuple[Any, Any]:
        conn, addr = self.socket.accept()
        # The handshake runs on the handler's thread, so one refused certificate blocks nobody.
        return self.owner.context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False), addr


class PortalLookalike:
    """A TLS server on 127.0.0.1 answering like the SSO portal, with a certificate for any SNI name."""

    def __init__(self, ca: TestCA, default_host: str = "localhost") -> None:
        self.ca = ca
        self.requests: list[tuple[str, str, str]] = []
        self.handshake_errors: list[str] = []
        self.server_names: list[str] = []
        self._contexts: dict[str, ssl.SSLContext] = {}
        self.context = self._context_for(default_host)
        self.context.sni_callback = self._choose
        self._server = _TlsHttpServer((LOCALHOST, 0), _PortalHandler)
        self._server.owner = self
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="tls-portal", daemon=True)

    def _context_for(self, host: str) -> ssl.SSLContext:
        if host not in self._contexts:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self.ca.issue(host))
            self._contexts[host] = ctx
        return self._contexts[host]

    def _choose(self, sslobj: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: ssl.SSLContext) -> None:
        if server_name:
            self.server_names.append(server_name)
            sslobj.context = self._context_for(server_name)

    def __enter__(self) -> PortalLookalike:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()


class _ProxyHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server = self.server
        assert isinstance(server, _ProxyServer)
        client: socket.socket = self.request
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk:
                return
            head += chunk
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        method, _, rest = request_line.partition(" ")
        target = rest.rsplit(" ", 1)[0]
        server.owner.connects.append(f"{method} {target}")
        if method != "CONNECT":
            client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        # Whatever host was asked for, the tunnel ends at the local TLS server: never the network.
        with socket.create_connection((LOCALHOST, server.owner.upstream_port), timeout=10) as upstream:
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            _pipe(client, upstream)


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    peers = {a: b, b: a}
    while True:
        ready, _, _ = select.select(list(peers), [], [], 10)
        if not ready:
            return
        for sock in ready:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            peers[sock].sendall(data)


class _ProxyServer(_Quiet, socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: ConnectProxy


class ConnectProxy:
    """An HTTP proxy on 127.0.0.1 that tunnels every CONNECT to ``127.0.0.1:upstream_port``."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.connects: list[str] = []
        self._server = _ProxyServer((LOCALHOST, 0), _ProxyHandler)
        self._server.owner = self
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="connect-proxy", daemon=True)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: the value for ``HTTPS_PROXY``."""
        return f"http://{LOCALHOST}:{self.port}"

    def __enter__(self) -> ConnectProxy:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
