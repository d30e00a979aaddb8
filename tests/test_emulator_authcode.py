"""PKCE authorization-code flow, the /authorize page, and refresh-token rotation."""

from __future__ import annotations

import base64
import hashlib
import http.client
import secrets
import threading
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.support.emulator import RunningEmulator, oidc_client, shared, shared_emulator, sso_client

__all__ = ["shared", "shared_emulator"]

CALLBACK = "http://127.0.0.1/oauth/callback"
SCOPES = ["sso:account:access"]


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def _register(url: str, redirect_uris: list[str] | None = None, scopes: list[str] | None = None) -> dict[str, Any]:
    result: dict[str, Any] = oidc_client(url).register_client(
        clientName="botocore-client-dev",
        clientType="public",
        grantTypes=["authorization_code", "refresh_token"],
        redirectUris=redirect_uris or [CALLBACK],
        issuerUrl="https://d-1234567890.awsapps.com/start",
        scopes=SCOPES if scopes is None else scopes,
    )
    return result


def _authorize_url(url: str, client_id: str, redirect_uri: str, challenge: str, /, **overrides: str) -> str:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "state": overrides.pop("state", str(uuid.uuid4())),
        "code_challenge_method": "S256",
        "scopes": " ".join(SCOPES),
        **overrides,
    }
    query = urllib.parse.urlencode(params, quote_via=urllib.parse.quote, safe="-._~")
    return f"{url}/authorize?{query}&code_challenge={challenge}"


def _request(url: str, method: str = "GET", body: str | None = None) -> tuple[int, dict[str, str], str]:
    """One HTTP request without following redirects."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=10)
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if body is not None else {}
    connection.request(method, f"{parts.path}?{parts.query}" if parts.query else parts.path, body, headers)
    response = connection.getresponse()
    text = response.read().decode()
    connection.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, text


def _code(location: str) -> tuple[str, dict[str, str]]:
    parts = urllib.parse.urlsplit(location)
    query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    return f"{parts.scheme}://{parts.netloc}{parts.path}", query


def _login(url: str, port: int = 53211) -> tuple[dict[str, Any], dict[str, Any]]:
    reg = _register(url)
    verifier, challenge = _pkce()
    redirect_uri = f"http://127.0.0.1:{port}/oauth/callback"
    status, headers, _ = _request(_authorize_url(url, reg["clientId"], redirect_uri, challenge))
    assert status == 302
    _, query = _code(headers["location"])
    token: dict[str, Any] = oidc_client(url).create_token(
        clientId=reg["clientId"],
        clientSecret=reg["clientSecret"],
        grantType="authorization_code",
        code=query["code"],
        redirectUri=redirect_uri,
        codeVerifier=verifier,
    )
    return reg, token


def _refresh(url: str, reg: dict[str, Any], refresh_token: str) -> dict[str, Any]:
    result: dict[str, Any] = oidc_client(url).create_token(
        clientId=reg["clientId"],
        clientSecret=reg["clientSecret"],
        grantType="refresh_token",
        refreshToken=refresh_token,
    )
    return result


def test_pkce_flow_echoes_state_and_issues_tokens(shared: RunningEmulator) -> None:
    reg = _register(shared.url)
    verifier, challenge = _pkce()
    state = str(uuid.uuid4())
    redirect_uri = "http://127.0.0.1:53211/oauth/callback"
    status, headers, _ = _request(_authorize_url(shared.url, reg["clientId"], redirect_uri, challenge, state=state))
    assert status == 302
    target, query = _code(headers["location"])
    assert target == redirect_uri
    assert query["state"] == state and set(query) == {"code", "state"}
    token = oidc_client(shared.url).create_token(
        clientId=reg["clientId"],
        clientSecret=reg["clientSecret"],
        grantType="authorization_code",
        code=query["code"],
        redirectUri=redirect_uri,
        codeVerifier=verifier,
    )
    assert token["tokenType"] == "Bearer" and token["expiresIn"] == 3600
    assert token["accessToken"] and token["refreshToken"]
    assert sso_client(shared.url).list_accounts(accessToken=token["accessToken"])["accountList"]
    stats = shared.stats()
    assert stats["operations"]["Authorize"] == 1
    assert stats["create_token"]["authorization_code"] == 1


def test_state_with_special_characters_is_echoed_verbatim(shared: RunningEmulator) -> None:
    reg = _register(shared.url)
    _, challenge = _pkce()
    state = "a b/c+d=e&f~"
    url = _authorize_url(shared.url, reg["clientId"], "http://127.0.0.1:1/oauth/callback", challenge, state=state)
    _, headers, _ = _request(url)
    assert _code(headers["location"])[1]["state"] == state


def test_any_port_accepted_for_portless_loopback_registration(shared: RunningEmulator) -> None:
    for port in (1024, 40000, 65000):
        _, token = _login(shared.url, port)
        assert token["accessToken"]


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1:8080/other",
        "http://localhost:8080/oauth/callback",
        "https://127.0.0.1:8080/oauth/callback",
        "http://evil.example/oauth/callback",
        "http://127.0.0.1:8080/oauth/callback#frag",
        "http://user@127.0.0.1:8080/oauth/callback",
        "http://127.0.0.1:notaport/oauth/callback",
    ],
)
def test_redirect_mismatch_gets_400_page_not_a_redirect(shared: RunningEmulator, redirect_uri: str) -> None:
    reg = _register(shared.url)
    _, challenge = _pkce()
    status, headers, page = _request(_authorize_url(shared.url, reg["clientId"], redirect_uri, challenge))
    assert status == 400
    assert "location" not in headers
    assert "text/html" in headers["content-type"] and "redirect_uri" in page


def test_registered_port_must_match_exactly(shared: RunningEmulator) -> None:
    reg = _register(shared.url, ["http://127.0.0.1:9000/cb"])
    _, challenge = _pkce()
    assert _request(_authorize_url(shared.url, reg["clientId"], "http://127.0.0.1:9000/cb", challenge))[0] == 302
    assert _request(_authorize_url(shared.url, reg["clientId"], "http://127.0.0.1:9001/cb", challenge))[0] == 400


@pytest.mark.parametrize(
    "override",
    [
        {"response_type": "token"},
        {"code_challenge_method": "plain"},
        {"scopes": "sso:account:access admin:everything"},
        {"client_id": "unknown-client"},
    ],
)
def test_invalid_authorize_parameters(shared: RunningEmulator, override: dict[str, str]) -> None:
    reg = _register(shared.url)
    _, challenge = _pkce()
    url = _authorize_url(shared.url, reg["clientId"], "http://127.0.0.1:5000/oauth/callback", challenge, **override)
    status, headers, _ = _request(url)
    assert status == 400 and "location" not in headers


@pytest.mark.parametrize("challenge", ["short", "A" * 44, "A" * 42 + "+/"])
def test_bad_code_challenge_rejected(shared: RunningEmulator, challenge: str) -> None:
    reg = _register(shared.url)
    status, _, _ = _request(_authorize_url(shared.url, reg["clientId"], CALLBACK, challenge))
    assert status == 400


def _code_for(url: str, reg: dict[str, Any], redirect_uri: str) -> tuple[str, str]:
    verifier, challenge = _pkce()
    _, headers, _ = _request(_authorize_url(url, reg["clientId"], redirect_uri, challenge))
    return _code(headers["location"])[1]["code"], verifier


def test_code_grant_failures_are_invalid_grant(shared: RunningEmulator) -> None:
    oidc = oidc_client(shared.url)
    reg = _register(shared.url)
    redirect_uri = "http://127.0.0.1:5000/oauth/callback"
    code, verifier = _code_for(shared.url, reg, redirect_uri)
    client = {
        "clientId": reg["clientId"],
        "clientSecret": reg["clientSecret"],
        "grantType": "authorization_code",
    }
    attempts = [
        {"code": code, "redirectUri": redirect_uri, "codeVerifier": _pkce()[0]},
        {"code": code, "redirectUri": "http://127.0.0.1:5001/oauth/callback", "codeVerifier": verifier},
        {"code": code, "redirectUri": CALLBACK, "codeVerifier": verifier},
        {"code": "no-such-code", "redirectUri": redirect_uri, "codeVerifier": verifier},
    ]
    for attempt in attempts:
        with pytest.raises(oidc.exceptions.InvalidGrantException) as info:
            oidc.create_token(**client, **attempt)
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert info.value.response["error"] == "invalid_grant"
        assert info.value.response["ResponseMetadata"]["RetryAttempts"] == 0
    token = oidc.create_token(**client, code=code, redirectUri=redirect_uri, codeVerifier=verifier)
    assert token["accessToken"]
    with pytest.raises(oidc.exceptions.InvalidGrantException):
        oidc.create_token(**client, code=code, redirectUri=redirect_uri, codeVerifier=verifier)
    assert shared.stats()["create_token"]["authorization_code"] == 1


def test_code_of_another_client_is_rejected(shared: RunningEmulator) -> None:
    first, second = _register(shared.url), _register(shared.url)
    code, verifier = _code_for(shared.url, first, CALLBACK)
    _code_refused(shared.url, second, code, verifier)


@pytest.mark.slow
def test_code_expires(shared: RunningEmulator) -> None:
    shared.control(code_ttl=1)
    reg = _register(shared.url)
    code, verifier = _code_for(shared.url, reg, CALLBACK)
    time.sleep(1.1)
    _code_refused(shared.url, reg, code, verifier)


def _code_refused(url: str, reg: dict[str, Any], code: str, verifier: str) -> None:
    """The authorization-code grant of ``code`` for client ``reg`` is refused with InvalidGrantException."""
    oidc = oidc_client(url)
    with pytest.raises(oidc.exceptions.InvalidGrantException):
        oidc.create_token(clientId=reg["clientId"], clientSecret=reg["clientSecret"], grantType="authorization_code",
                          code=code, redirectUri=CALLBACK, codeVerifier=verifier)


def test_deny_authorize_switch(shared: RunningEmulator) -> None:
    shared.control(deny_authorize=True)
    reg = _register(shared.url)
    _, challenge = _pkce()
    status, headers, _ = _request(_authorize_url(shared.url, reg["clientId"], CALLBACK, challenge, state="s1"))
    assert status == 302
    target, query = _code(headers["location"])
    assert target == CALLBACK and query == {"error": "access_denied", "state": "s1"}


@pytest.mark.parametrize("decision", ["allow", "deny"])
def test_manual_approval_page(shared: RunningEmulator, decision: str) -> None:
    shared.control(manual_approve=True)
    reg = _register(shared.url)
    _, challenge = _pkce()
    status, _, page = _request(_authorize_url(shared.url, reg["clientId"], CALLBACK, challenge, state="st"))
    assert status == 200
    assert 'id="allow"' in page and 'id="deny"' in page
    request_id = page.split('name="request" value="', 1)[1].split('"', 1)[0]
    form = urllib.parse.urlencode({"request": request_id, "decision": decision})
    status, headers, _ = _request(shared.url + "/authorize", "POST", form)
    assert status == 302
    _, query = _code(headers["location"])
    assert query["state"] == "st"
    assert ("code" in query) == (decision == "allow")
    assert (query.get("error") == "access_denied") == (decision == "deny")
    assert _request(shared.url + "/authorize", "POST", form)[0] == 400


def test_refresh_rotates_and_rejects_reuse(shared: RunningEmulator) -> None:
    reg, token = _login(shared.url)
    first = token["refreshToken"]
    refreshed = _refresh(shared.url, reg, first)
    assert refreshed["refreshToken"] != first and refreshed["accessToken"] != token["accessToken"]
    assert refreshed["expiresIn"] == 3600
    oidc = oidc_client(shared.url)
    with pytest.raises(oidc.exceptions.InvalidGrantException) as info:
        _refresh(shared.url, reg, first)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    again = _refresh(shared.url, reg, refreshed["refreshToken"])
    assert again["refreshToken"] not in (first, refreshed["refreshToken"])
    sso = sso_client(shared.url)
    for access in (token["accessToken"], refreshed["accessToken"], again["accessToken"]):
        assert sso.list_accounts(accessToken=access)["accountList"]
    stats = shared.stats()
    assert stats["refresh_token_reuse_rejected"] == 1
    assert stats["create_token"]["refresh_token"] == 2


def test_refresh_without_rotation(shared: RunningEmulator) -> None:
    shared.control(rotate=False)
    reg, token = _login(shared.url)
    for _ in range(3):
        assert _refresh(shared.url, reg, token["refreshToken"])["refreshToken"] == token["refreshToken"]
    assert shared.stats()["refresh_token_reuse_rejected"] == 0


def test_refresh_client_errors(shared: RunningEmulator) -> None:
    reg, token = _login(shared.url)
    oidc = oidc_client(shared.url)
    for client_id, secret in ((reg["clientId"], "wrong"), ("unknown", reg["clientSecret"])):
        with pytest.raises(oidc.exceptions.InvalidClientException) as info:
            oidc.create_token(
                clientId=client_id,
                clientSecret=secret,
                grantType="refresh_token",
                refreshToken=token["refreshToken"],
            )
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 401
        assert info.value.response["error"] == "invalid_client"
    other = _register(shared.url)
    with pytest.raises(oidc.exceptions.InvalidGrantException):
        _refresh(shared.url, other, token["refreshToken"])
    with pytest.raises(oidc.exceptions.UnsupportedGrantTypeException):
        oidc.create_token(clientId=reg["clientId"], clientSecret=reg["clientSecret"], grantType="password")
    assert _refresh(shared.url, reg, token["refreshToken"])["accessToken"]


def test_no_refresh_token_without_registered_scopes(shared: RunningEmulator) -> None:
    reg = _register(shared.url, scopes=[])
    verifier, challenge = _pkce()
    url = _authorize_url(shared.url, reg["clientId"], CALLBACK, challenge, scopes="")
    _, headers, _ = _request(url)
    token = oidc_client(shared.url).create_token(
        clientId=reg["clientId"],
        clientSecret=reg["clientSecret"],
        grantType="authorization_code",
        code=_code(headers["location"])[1]["code"],
        redirectUri=CALLBACK,
        codeVerifier=verifier,
    )
    assert "refreshToken" not in token


def test_revoke_kills_access_and_refresh_tokens(shared: RunningEmulator) -> None:
    reg, token = _login(shared.url)
    shared.revoke()
    sso = sso_client(shared.url)
    with pytest.raises(sso.exceptions.UnauthorizedException):
        sso.list_accounts(accessToken=token["accessToken"])
    oidc = oidc_client(shared.url)
    with pytest.raises(oidc.exceptions.InvalidGrantException):
        _refresh(shared.url, reg, token["refreshToken"])


@pytest.mark.slow
def test_expired_registration_is_invalid_client(shared: RunningEmulator) -> None:
    shared.control(registration_ttl=1)
    reg, token = _login(shared.url)
    time.sleep(1.1)
    oidc = oidc_client(shared.url)
    with pytest.raises(oidc.exceptions.InvalidClientException):
        _refresh(shared.url, reg, token["refreshToken"])


def test_concurrent_refreshes_of_one_token_have_one_winner(shared: RunningEmulator) -> None:
    reg, token = _login(shared.url)
    shared.reset()
    oidc = oidc_client(shared.url)
    barrier = threading.Barrier(8)

    def attempt() -> str:
        barrier.wait()
        try:
            return str(_refresh(shared.url, reg, token["refreshToken"])["refreshToken"])
        except oidc.exceptions.InvalidGrantException:
            return "rejected"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda _: attempt(), range(8)))
    assert outcomes.count("rejected") == 7
    stats = shared.stats()
    assert stats["refresh_token_reuse_rejected"] == 7 and stats["create_token"]["refresh_token"] == 1
