"""SSO portal: role credentials, account and role listings with pagination, logout, errors."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.emulator import (
    RunningEmulator,
    device_login,
    refresh_refused,
    shared,
    shared_emulator,
    sso_client,
    start_emulator,
)

__all__ = ["shared", "shared_emulator"]


@pytest.fixture(scope="module")
def big() -> Iterator[tuple[RunningEmulator, str]]:
    """An emulator with 23 accounts of 7 roles, and an access token for it."""
    running = start_emulator("--accounts", "23", "--roles", "7")
    try:
        yield running, device_login(running.url)[1]["accessToken"]
    finally:
        running.stop()


def _raw(url: str, path: str, token: str | None, method: str = "GET") -> tuple[int, dict[str, str], dict[str, Any]]:
    request = urllib.request.Request(url + path, method=method, data=b"" if method == "POST" else None)
    if token is not None:
        request.add_header("x-amz-sso_bearer_token", token)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, headers, body = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, headers, body = error.code, dict(error.headers), error.read()
    return status, {k.lower(): v for k, v in headers.items()}, json.loads(body) if body else {}


def _all_accounts(url: str, token: str, page_size: int) -> tuple[list[dict[str, str]], int]:
    sso = sso_client(url)
    accounts: list[dict[str, str]] = []
    pages = 0
    kwargs: dict[str, Any] = {"accessToken": token, "maxResults": page_size}
    while True:
        page = sso.list_accounts(**kwargs)
        pages += 1
        assert len(page["accountList"]) <= page_size
        accounts.extend(page["accountList"])
        if not page.get("nextToken"):
            return accounts, pages
        kwargs["nextToken"] = page["nextToken"]


def test_paginators_walk_every_page(big: tuple[RunningEmulator, str]) -> None:
    running, token = big
    sso = sso_client(running.url)
    pages = list(sso.get_paginator("list_accounts").paginate(accessToken=token, PaginationConfig={"PageSize": 5}))
    assert [len(p["accountList"]) for p in pages] == [5, 5, 5, 5, 3]
    assert all("nextToken" in p for p in pages[:-1]) and "nextToken" not in pages[-1]
    accounts = [a for p in pages for a in p["accountList"]]
    assert len({a["accountId"] for a in accounts}) == 23
    assert [a["accountName"] for a in accounts] == [f"account-{i}" for i in range(1, 24)]
    account_id = accounts[4]["accountId"]
    role_pages = list(
        sso.get_paginator("list_account_roles").paginate(
            accessToken=token, accountId=account_id, PaginationConfig={"PageSize": 3}
        )
    )
    assert [len(p["roleList"]) for p in role_pages] == [3, 3, 1]
    roles = [r for p in role_pages for r in p["roleList"]]
    assert len({r["roleName"] for r in roles}) == 7
    assert {r["accountId"] for r in roles} == {account_id}
    everything = sso.get_paginator("list_accounts").paginate(accessToken=token).build_full_result()
    assert len(everything["accountList"]) == 23


def test_default_page_size_is_20(big: tuple[RunningEmulator, str]) -> None:
    running, token = big
    page = sso_client(running.url).list_accounts(accessToken=token)
    assert len(page["accountList"]) == 20 and page["nextToken"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(page_size=st.integers(min_value=1, max_value=100))
def test_any_page_size_lists_every_account_once(big: tuple[RunningEmulator, str], page_size: int) -> None:
    running, token = big
    accounts, pages = _all_accounts(running.url, token, page_size)
    assert [a["accountName"] for a in accounts] == [f"account-{i}" for i in range(1, 24)]
    assert pages == -(-23 // page_size)


def test_max_result_bounds_and_bad_tokens(big: tuple[RunningEmulator, str]) -> None:
    running, token = big
    sso = sso_client(running.url)
    for bad in ({"maxResults": 101}, {"nextToken": "garbage"}, {"nextToken": "YWNjb3VudHN8MnxiYWQ"}):
        with pytest.raises(sso.exceptions.InvalidRequestException) as info:
            sso.list_accounts(accessToken=token, **bad)
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert info.value.response["Error"]["Code"] == "InvalidRequestException"
    assert len(sso.list_accounts(accessToken=token, maxResults=100)["accountList"]) == 23
    first = sso.list_accounts(accessToken=token, maxResults=1)
    account_id = first["accountList"][0]["accountId"]
    with pytest.raises(sso.exceptions.InvalidRequestException):
        sso.list_account_roles(accessToken=token, accountId=account_id, nextToken=first["nextToken"])
    roles = sso.list_account_roles(accessToken=token, accountId=account_id, maxResults=2)
    other = sso.list_accounts(accessToken=token)["accountList"][1]["accountId"]
    with pytest.raises(sso.exceptions.InvalidRequestException):
        sso.list_account_roles(accessToken=token, accountId=other, nextToken=roles["nextToken"])
    with pytest.raises(sso.exceptions.InvalidRequestException):
        sso.list_account_roles(accessToken=token, accountId=account_id, maxResults=101)
    for value in ("0", "abc", "101"):
        status, headers, body = _raw(running.url, f"/assignment/accounts?max_result={value}", token)
        assert status == 400 and headers["x-amzn-errortype"].startswith("InvalidRequestException")
        assert set(body) == {"message"}


def test_get_role_credentials(shared: RunningEmulator) -> None:
    _, token = device_login(shared.url)
    sso = sso_client(shared.url)
    account = sso.list_accounts(accessToken=token["accessToken"])["accountList"][0]["accountId"]
    role = sso.list_account_roles(accessToken=token["accessToken"], accountId=account)["roleList"][1]["roleName"]
    before = time.time()
    creds = sso.get_role_credentials(accessToken=token["accessToken"], accountId=account, roleName=role)
    creds = creds["roleCredentials"]
    assert creds["accessKeyId"].startswith("ASIA") and len(creds["accessKeyId"]) == 20
    assert len(creds["secretAccessKey"]) == 40 and creds["sessionToken"]
    assert before + 3600 <= creds["expiration"] / 1000 <= time.time() + 3601
    assert creds["expiration"] % 1000 == 0
    again = sso.get_role_credentials(accessToken=token["accessToken"], accountId=account, roleName=role)
    assert again["roleCredentials"]["accessKeyId"] != creds["accessKeyId"]
    assert shared.stats()["operations"]["GetRoleCredentials"] == 2


def test_not_found_and_bad_request_errors(shared: RunningEmulator) -> None:
    _, token = device_login(shared.url)
    sso = sso_client(shared.url)
    access = token["accessToken"]
    account = sso.list_accounts(accessToken=access)["accountList"][0]["accountId"]
    cases: list[Callable[[], Any]] = [
        lambda: sso.get_role_credentials(accessToken=access, accountId="999999999999", roleName="AdministratorAccess"),
        lambda: sso.get_role_credentials(accessToken=access, accountId=account, roleName="NoSuchRole"),
        lambda: sso.list_account_roles(accessToken=access, accountId="999999999999"),
    ]
    for case in cases:
        with pytest.raises(sso.exceptions.ResourceNotFoundException) as info:
            case()
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
        assert info.value.response["ResponseMetadata"]["RetryAttempts"] == 0
    for path in (
        f"/federation/credentials?account_id={account}",
        "/federation/credentials?role_name=AdministratorAccess",
        "/assignment/roles",
    ):
        status, headers, body = _raw(shared.url, path, access)
        assert status == 400, path
        assert headers["x-amzn-errortype"].split(":")[0] == "InvalidRequestException"
        assert "message" in body


@pytest.mark.slow
def test_unauthorized_for_missing_bad_and_expired_tokens(shared: RunningEmulator) -> None:
    for bad in (None, "", "not-a-token"):
        status, headers, body = _raw(shared.url, "/assignment/accounts", bad)
        assert status == 401
        assert headers["x-amzn-errortype"].split(":")[0] == "UnauthorizedException"
        assert body == {"message": "Session token not found or invalid"}
    shared.control(token_ttl=1)
    _, token = device_login(shared.url)
    sso = sso_client(shared.url)
    assert sso.list_accounts(accessToken=token["accessToken"])["accountList"]
    time.sleep(1.1)
    with pytest.raises(sso.exceptions.UnauthorizedException) as info:
        sso.list_accounts(accessToken=token["accessToken"])
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 401
    assert info.value.response["Error"]["Message"] == "Session token not found or invalid"


def test_logout_revokes_the_session(shared: RunningEmulator) -> None:
    registration, token = device_login(shared.url)
    _, other = device_login(shared.url)
    sso = sso_client(shared.url)
    account = sso.list_accounts(accessToken=token["accessToken"])["accountList"][0]["accountId"]
    creds = sso.get_role_credentials(accessToken=token["accessToken"], accountId=account, roleName="ReadOnlyAccess")
    response = sso.logout(accessToken=token["accessToken"])
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert response["ResponseMetadata"]["HTTPHeaders"]["content-length"] == "0"
    with pytest.raises(sso.exceptions.UnauthorizedException):
        sso.list_accounts(accessToken=token["accessToken"])
    with pytest.raises(sso.exceptions.UnauthorizedException):
        sso.logout(accessToken=token["accessToken"])
    refresh_refused(shared.url, registration, token["refreshToken"])
    assert sso.list_accounts(accessToken=other["accessToken"])["accountList"]
    assert creds["roleCredentials"]["accessKeyId"].startswith("ASIA")
    assert shared.stats()["operations"]["Logout"] == 2
