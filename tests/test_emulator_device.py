"""Device-code flow: pending, slow_down, expiry, manual approval pages, client checks."""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest

from tests.support.emulator import (
    DEVICE_GRANT,
    START_URL,
    RunningEmulator,
    oidc_client,
    shared,
    shared_emulator,
)

__all__ = ["shared", "shared_emulator"]


def _start(url: str, **registration: Any) -> tuple[dict[str, str], dict[str, Any]]:
    oidc = oidc_client(url)
    reg = oidc.register_client(clientName="botocore-client-dev", clientType="public", **registration)
    client = {"clientId": reg["clientId"], "clientSecret": reg["clientSecret"]}
    return client, oidc.start_device_authorization(startUrl=START_URL, **client)


def _poll(url: str, client: dict[str, str], device: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = oidc_client(url).create_token(
        grantType=DEVICE_GRANT, deviceCode=device["deviceCode"], **client
    )
    return result


def _error(url: str, client: dict[str, str], device: dict[str, Any]) -> dict[str, Any]:
    oidc = oidc_client(url)
    with pytest.raises(oidc.exceptions.ClientError) as info:
        _poll(url, client, device)
    response: dict[str, Any] = info.value.response
    return response


def _page(url: str, form: dict[str, str] | None = None) -> tuple[int, str]:
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_start_device_authorization_shape(shared: RunningEmulator) -> None:
    _, device = _start(shared.url)
    assert device["verificationUri"] == shared.url + "/device"
    assert device["verificationUriComplete"] == f"{shared.url}/device?user_code={device['userCode']}"
    assert device["interval"] == 1 and 0 < device["expiresIn"] <= 600
    assert len(device["userCode"]) == 9 and device["userCode"][4] == "-"


def test_cli_polling_pattern_succeeds(shared: RunningEmulator) -> None:
    client, device = _start(shared.url, scopes=["sso:account:access"])
    pending = _error(shared.url, client, device)
    assert pending["Error"]["Code"] == "AuthorizationPendingException"
    assert pending["error"] == "authorization_pending"
    assert pending["ResponseMetadata"]["HTTPStatusCode"] == 400
    token = _poll(shared.url, client, device)
    assert token["accessToken"] and token["refreshToken"] and token["expiresIn"] == 3600
    assert _error(shared.url, client, device)["Error"]["Code"] == "InvalidGrantException"
    stats = shared.stats()
    assert stats["operations"]["CreateToken"] == 3 and stats["create_token"]["device_code"] == 1


def test_approve_at_once_and_no_refresh_token_without_scopes(shared: RunningEmulator) -> None:
    shared.control(approve_after_polls=0)
    client, device = _start(shared.url)
    token = _poll(shared.url, client, device)
    assert "refreshToken" not in token


@pytest.mark.slow
def test_slow_down_then_success(shared: RunningEmulator) -> None:
    shared.control(approve_after_polls=2)
    client, device = _start(shared.url)
    assert _error(shared.url, client, device)["Error"]["Code"] == "AuthorizationPendingException"
    slow = _error(shared.url, client, device)
    assert slow["Error"]["Code"] == "SlowDownException" and slow["error"] == "slow_down"
    time.sleep(1.0)
    assert _poll(shared.url, client, device)["accessToken"]


@pytest.mark.slow
def test_polling_at_the_interval_is_not_slowed_down(shared: RunningEmulator) -> None:
    shared.control(approve_after_polls=2)
    client, device = _start(shared.url)
    for _ in range(2):
        assert _error(shared.url, client, device)["Error"]["Code"] == "AuthorizationPendingException"
        time.sleep(1.0)
    assert _poll(shared.url, client, device)["accessToken"]


@pytest.mark.slow
def test_device_code_expires(shared: RunningEmulator) -> None:
    shared.control(device_ttl=1)
    client, device = _start(shared.url)
    assert device["expiresIn"] == 1
    time.sleep(1.05)
    expired = _error(shared.url, client, device)
    assert expired["Error"]["Code"] == "ExpiredTokenException" and expired["error"] == "expired_token"
    assert _page(device["verificationUriComplete"])[0] == 400


@pytest.mark.parametrize("decision", ["allow", "deny"])
def test_manual_approval_on_the_verification_page(shared: RunningEmulator, decision: str) -> None:
    shared.control(manual_approve=True)
    client, device = _start(shared.url)
    for _ in range(2):
        assert _error(shared.url, client, device)["Error"]["Code"] in (
            "AuthorizationPendingException",
            "SlowDownException",
        )
    status, page = _page(device["verificationUriComplete"])
    assert status == 200 and 'id="allow"' in page and 'id="deny"' in page and device["userCode"] in page
    status, page = _page(shared.url + "/device", {"user_code": device["userCode"].lower(), "decision": decision})
    assert status == 200
    if decision == "allow":
        assert _poll(shared.url, client, device)["accessToken"]
    else:
        denied = _error(shared.url, client, device)
        assert denied["Error"]["Code"] == "AccessDeniedException" and denied["error"] == "access_denied"
    assert "already answered" in _page(device["verificationUriComplete"])[1]


def test_device_pages_without_or_with_unknown_code(shared: RunningEmulator) -> None:
    status, page = _page(shared.url + "/device")
    assert status == 200 and 'id="user_code"' in page
    assert _page(shared.url + "/device?user_code=ZZZZ-ZZZZ")[0] == 400
    assert _page(shared.url + "/device", {"user_code": "ZZZZ-ZZZZ", "decision": "allow"})[0] == 400


def test_deny_switch_denies_device_flow(shared: RunningEmulator) -> None:
    shared.control(deny_authorize=True, approve_after_polls=0)
    client, device = _start(shared.url)
    assert _error(shared.url, client, device)["Error"]["Code"] == "AccessDeniedException"


def test_client_checks(shared: RunningEmulator) -> None:
    oidc = oidc_client(shared.url)
    client, device = _start(shared.url)
    with pytest.raises(oidc.exceptions.InvalidClientException) as info:
        oidc.start_device_authorization(startUrl=START_URL, clientId=client["clientId"], clientSecret="nope")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 401
    assert info.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"].startswith(
        "InvalidClientException:"
    )
    other, _ = _start(shared.url)
    assert _error(shared.url, other, device)["Error"]["Code"] == "InvalidGrantException"
    assert _error(shared.url, client, {"deviceCode": "nope"})["Error"]["Code"] == "InvalidGrantException"
    pkce_only = oidc.register_client(
        clientName="c",
        clientType="public",
        grantTypes=["authorization_code", "refresh_token"],
        redirectUris=["http://127.0.0.1/oauth/callback"],
        issuerUrl=START_URL,
    )
    with pytest.raises(oidc.exceptions.UnauthorizedClientException):
        oidc.start_device_authorization(
            startUrl=START_URL, clientId=pkce_only["clientId"], clientSecret=pkce_only["clientSecret"]
        )
