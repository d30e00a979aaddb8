"""Fault injection, latency, request logging, and CLI options reaching the settings."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import botocore.endpoint
import pytest
from botocore.exceptions import ClientError

from tests.support.emulator import (
    RunningEmulator,
    device_login,
    oidc_client,
    shared,
    shared_emulator,
    sso_client,
    start_emulator,
    sts_client,
)

__all__ = ["shared", "shared_emulator"]


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Make botocore retry without sleeping, in legacy mode; returns the delays it asked for.

    The retry mode is pinned because newer botocore releases default to "standard" (3 attempts).
    """
    monkeypatch.setenv("AWS_RETRY_MODE", "legacy")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "5")
    delays: list[float] = []
    monkeypatch.setattr(botocore.endpoint, "time", SimpleNamespace(sleep=delays.append))
    return delays


def _register(url: str, **config: Any) -> Any:
    return oidc_client(url, **config).register_client(clientName="c", clientType="public")


@pytest.mark.parametrize(
    ("option", "code", "status", "kind"),
    [
        ("--fail-rate", "InternalServerException", 500, "fail"),
        ("--throttle-rate", "TooManyRequestsException", 429, "throttle"),
    ],
)
def test_full_rate_fails_after_botocore_retries(
    no_backoff: list[float], option: str, code: str, status: int, kind: str
) -> None:
    running = start_emulator(option, "1")
    try:
        calls: tuple[Callable[[], Any], ...] = (
            lambda: _register(running.url),
            lambda: sso_client(running.url).list_accounts(accessToken="x"),
        )
        for call in calls:
            with pytest.raises(ClientError) as info:
                call()
            assert info.value.response["Error"]["Code"] == code
            assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
            assert info.value.response["ResponseMetadata"]["RetryAttempts"] == 4
        stats = running.stats()
        assert stats["injected"][kind] == 10
        assert stats["operations"]["RegisterClient"] == 5 and stats["operations"]["ListAccounts"] == 5
        assert len(no_backoff) == 8
        running.control(**{option[2:].replace("-", "_"): 0})
        assert _register(running.url)["clientId"]
    finally:
        running.stop()


def _session(url: str) -> dict[str, Any]:
    """Log in, list, fetch credentials and call STS; returns the injected counters."""
    _, token = device_login(url)
    sso = sso_client(url)
    accounts = sso.get_paginator("list_accounts").paginate(accessToken=token["accessToken"]).build_full_result()
    account = accounts["accountList"][0]["accountId"]
    sso.list_account_roles(accessToken=token["accessToken"], accountId=account)
    creds = sso.get_role_credentials(accessToken=token["accessToken"], accountId=account, roleName="ReadOnlyAccess")
    for _ in range(5):
        assert sts_client(url, creds["roleCredentials"]).get_caller_identity()["Account"] == account
    return {"accounts": len(accounts["accountList"])}


@pytest.mark.slow
def test_moderate_seeded_faults_are_absorbed_by_retries(no_backoff: list[float]) -> None:
    injected = []
    for _ in range(2):
        running = start_emulator("--fail-rate", "0.2", "--throttle-rate", "0.1", "--seed", "7")
        try:
            assert _session(running.url) == {"accounts": 3}
            injected.append(running.stats()["injected"])
        finally:
            running.stop()
    assert injected[0] == injected[1]
    assert injected[0]["fail"] > 0 and injected[0]["throttle"] > 0


def test_sts_faults_use_sts_codes(shared: RunningEmulator, no_backoff: list[float]) -> None:
    _, token = device_login(shared.url)
    sso = sso_client(shared.url)
    account = sso.list_accounts(accessToken=token["accessToken"])["accountList"][0]["accountId"]
    creds = sso.get_role_credentials(accessToken=token["accessToken"], accountId=account, roleName="ReadOnlyAccess")
    client = sts_client(shared.url, creds["roleCredentials"], retries={"mode": "standard", "total_max_attempts": 2})
    for settings, code, status in (
        ({"fail_rate": 1}, "InternalFailure", 500),
        ({"fail_rate": 0, "throttle_rate": 1}, "Throttling", 400),
    ):
        shared.control(**settings)
        with pytest.raises(ClientError) as info:
            client.get_caller_identity()
        assert info.value.response["Error"]["Code"] == code
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
        assert info.value.response["ResponseMetadata"]["RetryAttempts"] == 1


def test_injected_failure_does_not_rotate_refresh_token(shared: RunningEmulator) -> None:
    registration, token = device_login(shared.url)
    shared.reset()
    oidc = oidc_client(shared.url, retries={"total_max_attempts": 1})
    refresh = {
        "clientId": registration["clientId"],
        "clientSecret": registration["clientSecret"],
        "grantType": "refresh_token",
        "refreshToken": token["refreshToken"],
    }
    shared.control(fail_rate=1)
    with pytest.raises(ClientError) as info:
        oidc.create_token(**refresh)
    response: Any = info.value.response
    assert response["Error"]["Code"] == "InternalServerException"
    assert response["error"] == "server_error"
    shared.control(fail_rate=0)
    assert oidc.create_token(**refresh)["refreshToken"] != token["refreshToken"]
    stats = shared.stats()
    assert stats["refresh_token_reuse_rejected"] == 0
    assert stats["create_token"]["refresh_token"] == 1
    assert stats["operations"]["CreateToken"] == 2


def test_control_endpoints_are_never_faulted_or_delayed(shared: RunningEmulator) -> None:
    shared.control(fail_rate=1, latency_ms=5000)
    started = time.monotonic()
    for _ in range(3):
        assert shared.stats()["injected"] == {"fail": 0, "throttle": 0}
    shared.reset()
    # One delayed call alone would take 5 s; four undelayed ones take milliseconds even on a loaded machine.
    assert time.monotonic() - started < 5


def test_latency_is_added_to_api_requests(shared: RunningEmulator) -> None:
    shared.control(latency_ms=250)
    started = time.monotonic()
    _register(shared.url)
    assert time.monotonic() - started >= 0.25


def test_cli_options_reach_settings() -> None:
    running = start_emulator(
        "--token-ttl=11",
        "--cred-ttl=12",
        "--registration-ttl=13",
        "--device-ttl=14",
        "--code-ttl=15",
        "--no-rotate",
        "--approve-after-polls=3",
        "--manual-approve",
        "--fail-rate=0.5",
        "--throttle-rate=0.25",
        "--latency-ms=7",
        "--seed=1",
    )
    try:
        request = urllib.request.Request(running.url + "/_control", data=b"{}", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.loads(response.read()) == {
                "token_ttl": 11,
                "cred_ttl": 12,
                "registration_ttl": 13,
                "device_ttl": 14,
                "code_ttl": 15,
                "rotate": False,
                "approve_after_polls": 3,
                "manual_approve": True,
                "deny_authorize": False,
                "fail_rate": 0.5,
                "throttle_rate": 0.25,
                "latency_ms": 7,
                "deny_assume_role": [],
            }
    finally:
        running.stop()


def test_verbose_logs_request_lines_without_secrets() -> None:
    running = start_emulator("--verbose")
    try:
        registration, token = device_login(running.url)
        urllib.request.urlopen(running.url + "/device?user_code=ABCD-EFGH&x=secret", timeout=10).close()
    except urllib.error.HTTPError:
        pass
    finally:
        running.stop()
    log = running.stderr_text()
    lines = log.splitlines()
    assert "POST /client/register 200" in lines
    assert "POST /token 400" in lines and "POST /token 200" in lines
    assert "GET /device 400" in lines
    assert all(re.fullmatch(r"(GET|POST) /[\w/]* \d{3}", line) for line in lines), log
    for secret in (
        token["accessToken"],
        token["refreshToken"],
        registration["clientSecret"],
        "ABCD",
        "secret",
    ):
        assert secret not in log
