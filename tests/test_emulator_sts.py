"""STS GetCallerIdentity against issued keys, and botocore's own SSO providers against the emulator."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.emulator import (
    REPO_ROOT,
    START_URL,
    RunningEmulator,
    device_login,
    refresh_refused,
    shared,
    shared_emulator,
    sso_client,
    sts_client,
)

__all__ = ["shared", "shared_emulator"]

SESSION = "dev-sso"


def _credentials(url: str, token: str, account_index: int = 0, role: str = "ReadOnlyAccess") -> dict[str, Any]:
    sso = sso_client(url)
    account = sso.list_accounts(accessToken=token)["accountList"][account_index]["accountId"]
    result: dict[str, Any] = sso.get_role_credentials(accessToken=token, accountId=account, roleName=role)
    return {**result["roleCredentials"], "accountId": account}


def test_identity_maps_key_to_account_and_role(shared: RunningEmulator) -> None:
    _, token = device_login(shared.url)
    seen = set()
    for index, role in ((0, "ReadOnlyAccess"), (2, "AdministratorAccess")):
        creds = _credentials(shared.url, token["accessToken"], index, role)
        identity = sts_client(shared.url, creds).get_caller_identity()
        account = creds["accountId"]
        assert identity["Account"] == account
        assert identity["Arn"] == f"arn:aws:sts::{account}:assumed-role/{role}/emulator-user"
        role_id, user = identity["UserId"].split(":")
        assert role_id.startswith("AROA") and len(role_id) == 21 and user == "emulator-user"
        seen.add(role_id)
    assert len(seen) == 2
    assert shared.stats()["operations"]["GetCallerIdentity"] == 2


def test_unknown_key_and_wrong_session_token(shared: RunningEmulator) -> None:
    _, token = device_login(shared.url)
    creds = _credentials(shared.url, token["accessToken"])
    for client in (
        sts_client(shared.url),
        sts_client(shared.url, {**creds, "sessionToken": "forged"}),
        sts_client(shared.url, {**creds, "sessionToken": None}),
    ):
        with pytest.raises(ClientError) as info:
            client.get_caller_identity()
        assert info.value.response["Error"]["Code"] == "InvalidClientTokenId"
        error: Any = info.value.response["Error"]
        assert error["Type"] == "Sender"
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_unsigned_and_unknown_actions(shared: RunningEmulator) -> None:
    for body, code, status in (
        (b"Action=GetCallerIdentity&Version=2011-06-15", "MissingAuthenticationToken", 403),
        (b"Action=AssumeRole&Version=2011-06-15", "MissingAuthenticationToken", 403),
        (b"Action=DecodeAuthorizationMessage&Version=2011-06-15", "InvalidAction", 400),
    ):
        request = urllib.request.Request(shared.url + "/", data=body, method="POST")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=10)
        text = info.value.read().decode()
        assert info.value.code == status
        assert f"<Code>{code}</Code>" in text and text.startswith("<ErrorResponse")


@pytest.mark.slow
def test_expired_credentials_get_expired_token(shared: RunningEmulator) -> None:
    shared.control(cred_ttl=5)  # long enough for a loaded machine to build the client and call once in time
    _, token = device_login(shared.url)
    creds = _credentials(shared.url, token["accessToken"])
    client = sts_client(shared.url, creds)
    assert client.get_caller_identity()["Account"] == creds["accountId"]
    time.sleep(max(0.0, creds["expiration"] / 1000 - time.time()) + 0.05)
    with pytest.raises(ClientError) as info:
        client.get_caller_identity()
    assert info.value.response["Error"]["Code"] == "ExpiredToken"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def _iso(moment: float) -> str:
    return datetime.datetime.fromtimestamp(moment, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _aws_home(
    tmp_path: Path, running: RunningEmulator, expires_in: float
) -> tuple[dict[str, str], Path, dict[str, Any], str]:
    """A HOME with an sso-session profile and a botocore token cache.

    Returns the environment for a child process, the cache file, its first contents and the account.
    botocore fixes the token cache directory when it is imported, so HOME only takes effect in a
    new process.
    """
    registration, token = device_login(running.url)
    account = sso_client(running.url).list_accounts(accessToken=token["accessToken"])["accountList"][1]["accountId"]
    aws = tmp_path / ".aws"
    (aws / "sso" / "cache").mkdir(parents=True)
    (aws / "config").write_text(
        f"[profile dev]\nsso_session = {SESSION}\nsso_account_id = {account}\n"
        "sso_role_name = AdministratorAccess\nregion = us-east-1\n\n"
        f"[sso-session {SESSION}]\nsso_start_url = {START_URL}\nsso_region = us-east-1\n"
        "sso_registration_scopes = sso:account:access\n"
    )
    cache = aws / "sso" / "cache" / (hashlib.sha1(SESSION.encode()).hexdigest() + ".json")
    entry = {
        "startUrl": START_URL,
        "region": "us-east-1",
        "accessToken": token["accessToken"],
        "expiresAt": _iso(time.time() + expires_in),
        "clientId": registration["clientId"],
        "clientSecret": registration["clientSecret"],
        "registrationExpiresAt": _iso(registration["clientSecretExpiresAt"]),
        "refreshToken": token["refreshToken"],
    }
    cache.write_text(json.dumps(entry))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(running.env())
    env.update(
        HOME=str(tmp_path),
        AWS_CONFIG_FILE=str(aws / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(aws / "credentials"),
        PYTHONPATH=str(REPO_ROOT),
    )
    running.reset()
    return env, cache, entry, account


def _identities(env: dict[str, str], calls: int = 1, pause: float = 0.0) -> list[dict[str, Any]]:
    """GetCallerIdentity through ``boto3.Session(profile_name="dev")`` in a fresh process."""
    script = (
        "import json, sys, time, boto3\n"
        "sts = boto3.Session(profile_name='dev').client('sts')\n"
        "out = []\n"
        f"for i in range({calls}):\n"
        f"    time.sleep({pause} if i else 0)\n"
        "    try:\n"
        "        r = sts.get_caller_identity()\n"
        "        out.append({k: r[k] for k in ('Account', 'Arn', 'UserId')})\n"
        "    except Exception as e:\n"
        "        out.append({'error': type(e).__name__})\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    result: list[dict[str, Any]] = json.loads(proc.stdout)
    return result


def test_botocore_sso_provider_refreshes_token_through_emulator(shared: RunningEmulator, tmp_path: Path) -> None:
    env, cache, entry, account = _aws_home(tmp_path, shared, expires_in=300)
    [identity] = _identities(env)
    assert identity["Account"] == account
    assert identity["Arn"] == f"arn:aws:sts::{account}:assumed-role/AdministratorAccess/emulator-user"
    stats = shared.stats()
    assert stats["create_token"]["refresh_token"] == 1
    assert stats["operations"]["GetRoleCredentials"] == 1
    assert stats["operations"]["GetCallerIdentity"] == 1
    rewritten = json.loads(cache.read_text())
    assert rewritten["accessToken"] != entry["accessToken"]
    assert rewritten["refreshToken"] != entry["refreshToken"]
    assert rewritten["expiresAt"] > entry["expiresAt"]
    refresh_refused(shared.url, entry, entry["refreshToken"])
    assert shared.stats()["refresh_token_reuse_rejected"] == 1


@pytest.mark.slow
def test_botocore_refreshes_expiring_role_credentials(shared: RunningEmulator, tmp_path: Path) -> None:
    shared.control(cred_ttl=1)
    env, _, _, _ = _aws_home(tmp_path, shared, expires_in=3600)
    first, second = _identities(env, calls=2, pause=2.05)
    assert "error" not in second and first["Arn"] == second["Arn"]
    stats = shared.stats()
    assert stats["operations"]["GetRoleCredentials"] >= 2
    assert stats["operations"]["GetCallerIdentity"] == 2
    assert stats["create_token"]["refresh_token"] == 0


def test_botocore_reports_revoked_session(shared: RunningEmulator, tmp_path: Path) -> None:
    env, _, _, _ = _aws_home(tmp_path, shared, expires_in=3600)
    shared.revoke()
    assert _identities(env) == [{"error": "UnauthorizedSSOTokenError"}]
    assert shared.stats()["operations"]["GetRoleCredentials"] == 1
