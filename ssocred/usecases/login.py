"""Interactive SSO login: authorization code with PKCE in a browser, or the device code flow.

``remote_port`` runs the PKCE flow for a browser on another machine: the callback listens on that
fixed port (forwarded with ``ssh -L``, see ``usecases/remote_login.py``) and no browser is opened.

Example: ``login(LoginRequest(key="corp", start_url=u, region="us-east-1"), Store(), sys.stderr)``
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import secrets
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import parse_qs, quote, urlsplit

from ssocred.errors import AccessDenied, ConfigError, LoginRequired, ServiceError
from ssocred.model.sso import DEFAULT_SCOPES, Registration, Token

if TYPE_CHECKING:
    from ssocred.adapters.oidc import Grant, Oidc
    from ssocred.adapters.store import Store

PKCE = "pkce"
DEVICE = "device-code"
_VERIFIER_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"


@dataclass(frozen=True)
class LoginRequest:
    """What to log in to and how: ``LoginRequest("corp", "https://d-1.awsapps.com/start", "eu-west-1")``.

    ``key`` is the store name: the sso-session name, or the start URL of a legacy profile.
    """

    key: str
    start_url: str
    region: str
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    legacy: bool = False
    use_device_code: bool = False
    open_browser: bool = True
    timeout: float = 600.0
    #: ``--remote``: listen on this fixed port for a browser elsewhere, open none.
    remote_port: int | None = None
    #: The device code login to suggest as the fallback, with the caller's selection flags.
    device_code_command: str = "ssocred login --use-device-code"


@dataclass(frozen=True)
class LoginResult:
    """How a login ended: the token, the flow used, and whether another process's login was reused."""

    token: Token
    flow: str
    reused: bool = False


def pkce_pair() -> tuple[str, str]:
    """A PKCE verifier (64 chars of the RFC 7636 alphabet) and its S256 challenge (43 chars)."""
    verifier = "".join(secrets.choice(_VERIFIER_ALPHABET) for _ in range(64))
    return verifier, challenge_for(verifier)


def challenge_for(verifier: str) -> str:
    """``challenge_for("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Mel...-cM"``."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def authorize_url(base: str, client_id: str, redirect_uri: str, state: str, scopes: tuple[str, ...],
                  challenge: str) -> str:
    """The ``/authorize`` URL exactly as the AWS CLI builds it (PROTOCOL §3.2 step 5)."""
    params = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("state", state),
        ("code_challenge_method", "S256"),
        ("scopes", " ".join(scopes or DEFAULT_SCOPES)),
    ]
    query = "&".join(f"{k}={quote(v, safe='-._~')}" for k, v in params)
    return f"{base}/authorize?{query}&code_challenge={challenge}"


def browser_reachable(env: Mapping[str, str], platform: str = sys.platform) -> tuple[bool, str]:
    """Whether a browser on this machine can be expected, and why not: ``(False, "over SSH")``."""
    if env.get("BROWSER"):
        return True, ""
    if env.get("SSH_CONNECTION") or env.get("SSH_TTY"):
        return False, "this is an SSH session"
    if platform.startswith("linux") and not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        return False, "there is no display and BROWSER is not set"
    return True, ""


def choose_flow(req: LoginRequest, env: Mapping[str, str]) -> tuple[str, str]:
    """The flow to use and, when it is the device code flow, why: ``(DEVICE, "legacy profile")``."""
    if req.use_device_code:
        return DEVICE, ""
    if req.remote_port is not None:
        if req.legacy:
            raise ConfigError("the profile has no sso-session, so it can only log in with the device code flow, "
                              "not --remote", fix=f"run: {req.device_code_command}")
        return PKCE, ""
    if req.legacy:
        return DEVICE, "the profile has no sso-session, so the device code flow is used"
    reachable, why = browser_reachable(env)
    if not reachable:
        return DEVICE, (f"{why}; using the device code flow (log in on any device; to use a browser through "
                        "ssh -L instead, run again with --remote)")
    return PKCE, ""


def login(req: LoginRequest, store: Store, out: TextIO, env: Mapping[str, str] | None = None) -> LoginResult:
    """Log in interactively and store the token; only one login per session runs at a time.

    A caller that had to wait for another process's login reuses the token that login stored.
    """
    import os

    from ssocred.adapters.locks import LockTimeout, held
    from ssocred.adapters.oidc import Oidc

    if not req.start_url.startswith("https://"):
        raise ConfigError(
            f"sso_start_url '{req.start_url}' must use https",
            fix="set sso_start_url = https://<your-portal>.awsapps.com/start in ~/.aws/config",
        )
    environ = os.environ if env is None else env
    flow, why = choose_flow(req, environ)
    started = time.time()
    lock = store.login_lock(req.key)
    try:
        lock.acquire(timeout=0)
    except LockTimeout:
        print(f"Another ssocred login for '{req.key}' is in progress; waiting for it to finish...", file=out)
        try:
            lock.acquire(timeout=req.timeout)
        except LockTimeout:
            raise ServiceError(f"another login for '{req.key}' did not finish in {req.timeout:.0f} s",
                               fix="finish or cancel that login and try again") from None
    try:
        current = store.load_session(req.key)
        if current is not None and current.issued_at >= started:
            return LoginResult(current, flow, reused=True)
        if why:
            print(why, file=out)
        oidc = Oidc(req.region)
        if flow == PKCE:
            token = _pkce(req, oidc, current, out, environ)
        else:
            token = _device(req, oidc, current, out, environ)
        # Under the session lock: a refresh or logout in flight must not overwrite or delete it.
        with held(store.session_lock(req.key), f"SSO session '{req.key}'"):
            store.save_session(req.key, token)
        from ssocred.adapters import awscli_cache

        awscli_cache.after_refresh(req.key, token)
        return LoginResult(token, flow)
    finally:
        lock.release()


def _registration(req: LoginRequest, oidc: Oidc, current: Token | None, *, auth_code: bool) -> Registration:
    now = time.time()
    reg = current.registration if current else None
    if reg is not None and reg.usable(now, for_auth_code=auth_code) and set(req.scopes) <= set(reg.scopes):
        return reg
    name = f"ssocred-{req.key}" if not req.legacy else f"ssocred-{int(now)}"
    return oidc.register(name, req.scopes, auth_code=auth_code, issuer_url=req.start_url if auth_code else None)


def _token(req: LoginRequest, grant: Grant, reg: Registration) -> Token:
    issued = time.time()
    return Token(
        access_token=grant.access_token,
        expires_at=issued + grant.expires_in,
        issued_at=issued,
        start_url=req.start_url,
        region=req.region,
        refresh_token=grant.refresh_token,
        registration=reg,
    )


class _CallbackServer(http.server.HTTPServer):
    result: dict[str, str] | None = None


class _CallbackHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        ok = "error" not in query
        body = (
            "<html><body><h1>ssocred</h1><p>"
            + ("Login complete. You can close this window." if ok else "Login was not approved.")
            + "</p></body></html>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        server = self.server
        assert isinstance(server, _CallbackServer)
        if "error" in query or ("code" in query and "state" in query):
            server.result = query

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the request line carries the authorization code."""


def _listen(port: int | None) -> _CallbackServer:
    """The loopback callback server: on an OS-chosen port, or on the fixed ``--remote`` port."""
    if port is None:
        return _CallbackServer(("127.0.0.1", 0), _CallbackHandler)
    from ssocred.usecases import remote_login

    try:
        return _CallbackServer(("127.0.0.1", port), _CallbackHandler)
    except OSError as exc:
        raise remote_login.unavailable(port, exc) from None


def _pkce(req: LoginRequest, oidc: Oidc, current: Token | None, out: TextIO, env: Mapping[str, str]) -> Token:
    from ssocred.adapters.oidc import OAuthError
    from ssocred.usecases import remote_login

    server = _listen(req.remote_port)
    server.timeout = 0.5
    try:
        port = server.server_address[1]
        # The registration names http://127.0.0.1/oauth/callback with no port: the loopback rule
        # (PROTOCOL §1.3 RegisterClient and §3.2 step 1; RFC 8252 §7.3) matches it for any port, so a
        # fixed --remote port reuses a stored registration as it is: nothing is registered again.
        redirect_uri = f"http://127.0.0.1:{port}/oauth/callback"
        reg = _registration(req, oidc, current, auth_code=True)
        verifier, challenge = pkce_pair()
        state = str(uuid.uuid4())
        url = authorize_url(oidc.authorize_base(), reg.client_id, redirect_uri, state, req.scopes, challenge)
        if req.remote_port is not None:
            print(remote_login.instructions(port, url, req.device_code_command, req.timeout, env), file=out,
                  flush=True)
            fix = f"check that the ssh -L {port}:127.0.0.1:{port} connection is open and run the login again, " \
                  f"or run: {req.device_code_command}"
        else:
            print("Approve the login in your browser. If it did not open, open this URL on this machine:", file=out)
            print(f"\n    {url}\n", file=out)
            print("(On another device? Press Ctrl-C and run again with --remote or --use-device-code.)", file=out,
                  flush=True)
            fix = "run the login again (use --remote or --use-device-code on a remote machine)"
            if req.open_browser:
                _open(url)
        deadline = time.monotonic() + req.timeout
        while server.result is None:
            if time.monotonic() > deadline:
                raise LoginRequired(f"no answer from the browser within {req.timeout:.0f} s", fix=fix)
            server.handle_request()
        result = server.result
    finally:
        server.server_close()
    if "error" in result:
        raise AccessDenied(f"the login was not approved in the browser ({result['error']})",
                           fix="run the login again and choose Allow")
    if result.get("state") != state:
        raise AccessDenied("the browser returned a state that does not match this login (possible forgery)",
                           fix="run the login again")
    try:
        grant = oidc.code_token(reg, result["code"], redirect_uri, verifier)
    except OAuthError as exc:
        raise LoginRequired(f"the authorization code was refused ({exc.code})", fix="run the login again") from None
    return _token(req, grant, reg)


def _device(req: LoginRequest, oidc: Oidc, current: Token | None, out: TextIO,
            env: Mapping[str, str]) -> Token:
    from ssocred.adapters.oidc import OAuthError

    reg = _registration(req, oidc, current, auth_code=False)
    auth = oidc.start_device_authorization(reg, req.start_url)
    # The service ends the device code with ExpiredTokenException; --timeout is the local cap.
    deadline = time.monotonic() + req.timeout
    interval = float(auth.interval)
    shown = False
    while True:
        try:
            grant = oidc.device_token(reg, auth.device_code)
            return _token(req, grant, reg)
        except OAuthError as exc:
            if exc.code == "SlowDownException":
                interval += 5
            elif exc.code == "ExpiredTokenException":
                raise LoginRequired("the device code expired before the login was approved",
                                    fix="run the login again and approve it sooner") from None
            elif exc.code != "AuthorizationPendingException":
                raise AccessDenied(f"the device login was not approved ({exc.code})",
                                   fix="run the login again") from None
        if not shown:
            shown = True
            print("To log in, open this URL on any device and confirm the code:", file=out)
            print(f"\n    {auth.verification_uri}\n\n    code: {auth.user_code}\n", file=out, flush=True)
            if req.open_browser and browser_reachable(env)[0]:
                _open(auth.verification_uri_complete)
            continue
        if time.monotonic() + interval > deadline:
            raise LoginRequired(f"the login was not approved within {req.timeout:.0f} s",
                                fix="run the login again")
        time.sleep(interval)


def _open(url: str) -> None:
    # In a thread: a BROWSER command that waits for its page would otherwise block the very
    # callback it is waiting for.
    import threading
    import webbrowser

    def run() -> None:
        try:
            webbrowser.open_new_tab(url)
        except webbrowser.Error:
            pass

    threading.Thread(target=run, name="ssocred-browser", daemon=True).start()
