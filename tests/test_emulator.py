"""The emulator as a program: start line, signals, control endpoints, directory files, in-process use."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ssocred.emulator import Emulator, Settings
from tests.support.emulator import (
    REPO_ROOT,
    RunningEmulator,
    device_login,
    emulator,
    oidc_client,
    sso_client,
    start_emulator,
    sts_client,
)

__all__ = ["emulator"]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _post(url: str, payload: object) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_start_line_and_clean_exit_on_signal(sig: signal.Signals) -> None:
    running = start_emulator()
    try:
        assert running.url.startswith("http://127.0.0.1:")
        status, page = _get(running.url + "/")
        assert status == 200 and "AWS_ENDPOINT_URL_SSO_OIDC" in page
        running.proc.send_signal(sig)
        assert running.proc.wait(timeout=10) == 0
        assert running.stderr_text() == ""
    finally:
        running.stop()


def test_nothing_but_the_start_line_on_stdout() -> None:
    running = start_emulator("--accounts", "1")
    try:
        device_login(running.url)
        running.proc.send_signal(signal.SIGTERM)
        assert running.proc.wait(timeout=10) == 0
        assert running.proc.stdout is not None and running.proc.stdout.read() == ""
    finally:
        running.stop()


def test_help_documents_options_and_directory_format() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "from ssocred.emulator.cli import main; raise SystemExit(main(['--help']))"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )
    assert proc.returncode == 0
    assert '"accountName"' in proc.stdout and "--approve-after-polls" in proc.stdout


def test_bad_directory_file_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "dir.json"
    bad.write_text('{"accounts": [{"accountName": "a", "roles": "Admin"}]}')
    proc = subprocess.run(
        [sys.executable, "-m", "ssocred.emulator", "--directory", str(bad)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=20,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert '"roles" must be a list' in proc.stderr


def test_directory_file_drives_portal_and_sts(tmp_path: Path) -> None:
    directory = {
        "user": "alice@example.com",
        "accounts": [
            {
                "accountId": "111122223333",
                "accountName": "Dev",
                "emailAddress": "dev@corp.example",
                "roles": ["Admin"],
            },
            {"accountName": "Prod Main", "roles": ["ReadOnly", "Deploy"]},
        ],
    }
    path = tmp_path / "directory.json"
    path.write_text(json.dumps(directory))
    running = start_emulator("--directory", str(path))
    try:
        _, token = device_login(running.url)
        sso = sso_client(running.url)
        accounts = sso.list_accounts(accessToken=token["accessToken"])["accountList"]
        assert accounts[0] == {
            "accountId": "111122223333",
            "accountName": "Dev",
            "emailAddress": "dev@corp.example",
        }
        assert accounts[1]["accountName"] == "Prod Main"
        assert accounts[1]["emailAddress"] == "prod-main@example.com"
        assert len(accounts[1]["accountId"]) == 12 and accounts[1]["accountId"].isdigit()
        roles = sso.list_account_roles(accessToken=token["accessToken"], accountId=accounts[1]["accountId"])
        assert [r["roleName"] for r in roles["roleList"]] == ["ReadOnly", "Deploy"]
        creds = sso.get_role_credentials(accessToken=token["accessToken"], accountId="111122223333", roleName="Admin")
        identity = sts_client(running.url, creds["roleCredentials"]).get_caller_identity()
        assert identity["Arn"] == "arn:aws:sts::111122223333:assumed-role/Admin/alice@example.com"
    finally:
        running.stop()


def test_directory_and_generated_options_conflict(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ssocred.emulator", "--directory", "x.json", "--accounts", "2"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=20,
        check=False,
    )
    assert proc.returncode == 2 and "cannot be combined" in proc.stderr


def test_generated_directory_sizes_and_seed() -> None:
    first = start_emulator("--accounts", "5", "--roles", "4", "--seed", "3")
    second = start_emulator("--accounts", "5", "--roles", "4", "--seed", "3")
    try:
        listings = []
        for running in (first, second):
            _, token = device_login(running.url)
            sso = sso_client(running.url)
            accounts = sso.list_accounts(accessToken=token["accessToken"])["accountList"]
            roles = sso.list_account_roles(accessToken=token["accessToken"], accountId=accounts[0]["accountId"])
            assert len(accounts) == 5 and len(roles["roleList"]) == 4
            listings.append(accounts)
        assert listings[0] == listings[1]
    finally:
        first.stop()
        second.stop()


def test_stats_shape_counts_and_reset(emulator: RunningEmulator) -> None:
    stats = emulator.stats()
    assert stats == {
        "operations": {
            "RegisterClient": 0,
            "StartDeviceAuthorization": 0,
            "CreateToken": 0,
            "Authorize": 0,
            "GetRoleCredentials": 0,
            "ListAccounts": 0,
            "ListAccountRoles": 0,
            "Logout": 0,
            "GetCallerIdentity": 0,
            "AssumeRole": 0,
            "Federation": 0,
        },
        "create_token": {"authorization_code": 0, "device_code": 0, "refresh_token": 0},
        "refresh_token_reuse_rejected": 0,
        "injected": {"fail": 0, "throttle": 0},
        "in_flight_max": 0,
        "redirect_uris": [],
        "in_flight_now": {},
    }
    device_login(emulator.url)
    stats = emulator.stats()
    assert stats["operations"]["RegisterClient"] == 1
    assert stats["operations"]["StartDeviceAuthorization"] == 1
    assert stats["operations"]["CreateToken"] == 2
    assert stats["create_token"]["device_code"] == 1
    emulator.reset()
    assert emulator.stats()["operations"]["CreateToken"] == 0


def test_control_validates_and_answers_with_settings(emulator: RunningEmulator) -> None:
    status, body = _post(emulator.url + "/_control", {"token_ttl": 5, "rotate": False})
    assert status == 200 and body["token_ttl"] == 5 and body["rotate"] is False
    for bad in ({"nope": 1}, {"fail_rate": 2}, {"rotate": "yes"}, {"latency_ms": -1}, {"token_ttl": 0}, [1]):
        status, body = _post(emulator.url + "/_control", bad)
        assert status == 400, bad
        assert "message" in body
    status, body = _post(emulator.url + "/_control", {})
    assert body["token_ttl"] == 5 and body["fail_rate"] == 0
    _, token = device_login(emulator.url)
    assert token["expiresIn"] == 5


def test_directory_is_replaced_at_run_time(emulator: RunningEmulator) -> None:
    _, token = device_login(emulator.url)
    sso = sso_client(emulator.url)
    for bad in ([1], {"accounts": "x"}, {"accounts": [{"roles": ["A"]}]}):
        status, body = _post(emulator.url + "/_directory", bad)
        assert status == 400 and "message" in body, bad
    assert len(sso.list_accounts(accessToken=token["accessToken"])["accountList"]) == 3  # unchanged
    status, body = _post(emulator.url + "/_directory", {"accounts": [
        {"accountId": "123456789012", "accountName": "Only", "roles": ["Gone", "Kept"]}]})
    assert status == 200 and body == {"accounts": 1}
    accounts = sso.list_accounts(accessToken=token["accessToken"])["accountList"]  # the same token still works
    assert [a["accountId"] for a in accounts] == ["123456789012"]
    roles = sso.list_account_roles(accessToken=token["accessToken"], accountId="123456789012")["roleList"]
    assert [r["roleName"] for r in roles] == ["Gone", "Kept"]


def test_unknown_path_is_404_json(emulator: RunningEmulator) -> None:
    status, text = _get(emulator.url + "/nope")
    assert status == 404
    assert "message" in json.loads(text)


def test_in_process_emulator() -> None:
    with Emulator(Settings(token_ttl=42), seed=1).start() as running:
        assert running.url.startswith("http://127.0.0.1:")
        _, token = device_login(running.url)
        assert token["expiresIn"] == 42
        assert running.state.stats.snapshot()["create_token"]["device_code"] == 1
    with pytest.raises(OSError):
        urllib.request.urlopen(running.url + "/_stats", timeout=2)


def test_register_client_shapes_and_errors(emulator: RunningEmulator) -> None:
    oidc = oidc_client(emulator.url)
    reg = oidc.register_client(clientName="c", clientType="public", scopes=["sso:account:access"])
    assert isinstance(reg["clientIdIssuedAt"], int) and reg["clientIdIssuedAt"] < 10**10
    assert reg["clientSecretExpiresAt"] - reg["clientIdIssuedAt"] == 90 * 86400
    with pytest.raises(oidc.exceptions.InvalidClientMetadataException) as info:
        oidc.register_client(clientName="c", clientType="confidential")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert info.value.response["error"] == "invalid_client_metadata"
    with pytest.raises(oidc.exceptions.UnsupportedGrantTypeException):
        oidc.register_client(clientName="c", clientType="public", grantTypes=["password"])
    with pytest.raises(oidc.exceptions.InvalidRedirectUriException):
        oidc.register_client(
            clientName="c", clientType="public", grantTypes=["authorization_code"], issuerUrl="https://x"
        )
    with pytest.raises(oidc.exceptions.InvalidRedirectUriException):
        oidc.register_client(
            clientName="c",
            clientType="public",
            grantTypes=["authorization_code"],
            redirectUris=["http://evil.example/cb"],
            issuerUrl="https://x",
        )
    with pytest.raises(oidc.exceptions.InvalidRequestException):
        oidc.register_client(
            clientName="c",
            clientType="public",
            grantTypes=["authorization_code"],
            redirectUris=["http://127.0.0.1/oauth/callback"],
        )


def test_registration_ttl_option() -> None:
    running = start_emulator("--registration-ttl", "1234")
    try:
        reg = oidc_client(running.url).register_client(clientName="c", clientType="public")
        assert reg["clientSecretExpiresAt"] - reg["clientIdIssuedAt"] == 1234
    finally:
        running.stop()


def test_stats_keep_the_last_redirect_uris_only() -> None:
    from ssocred.emulator.state import REDIRECT_URIS_KEPT, Stats

    stats = Stats()
    for port in range(1, REDIRECT_URIS_KEPT + 3):
        stats.authorized(f"http://127.0.0.1:{port}/oauth/callback")
    kept = stats.snapshot()["redirect_uris"]
    assert len(kept) == REDIRECT_URIS_KEPT
    assert kept[0] == "http://127.0.0.1:3/oauth/callback"
    assert kept[-1] == f"http://127.0.0.1:{REDIRECT_URIS_KEPT + 2}/oauth/callback"
