"""logout, status, import/export with the AWS CLI cache, and what ends up on disk."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
import time
from pathlib import Path

import keyring
import pytest

from ssocred.adapters.store import Store
from ssocred.errors import EXIT_STORE
from ssocred.model.sso import iso_z
from ssocred.usecases.tokens import fresh_token
from tests.support.cli import ACCOUNT, ROLE, START_URL, login, run, write_config
from tests.support.emulator import RunningEmulator


def _cli_cache(home: Path, key: str) -> Path:
    return home / ".aws" / "sso" / "cache" / (hashlib.sha1(key.encode()).hexdigest() + ".json")


@pytest.mark.slow
def test_logout_revokes_and_wipes(sso: RunningEmulator) -> None:
    login()
    token = Store().load_session("corp")
    assert token is not None
    r = run("logout", "--sso-session", "corp")
    assert r.returncode == 0, r.stderr
    assert "Logged out of 'corp'" in r.stdout
    assert sso.stats()["operations"]["Logout"] == 1
    assert Store().load_session("corp") is None
    assert "corp" not in Store().index().sessions
    # The portal no longer accepts the revoked token.
    from ssocred.adapters.portal import Portal, TokenRejected

    try:
        Portal("us-east-1").accounts(token.access_token)
        raise AssertionError("revoked token was accepted")
    except TokenRejected:
        pass


def test_logout_when_not_logged_in(sso: RunningEmulator) -> None:
    r = run("logout")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "'corp' was not logged in; nothing to remove.\n"
    assert sso.stats()["operations"]["Logout"] == 0


@pytest.mark.slow
def test_logout_reports_portal_errors_but_still_wipes(sso: RunningEmulator) -> None:
    login()
    sso.control(fail_rate=1.0)
    r = run("logout", "--json")
    assert r.returncode == 0
    data = json.loads(r.stdout)
    assert data["sessions"][0]["portal_error"]
    assert Store().load_session("corp") is None


@pytest.mark.slow
def test_logout_all(sso: RunningEmulator) -> None:
    write_config(
        f"[sso-session a]\nsso_start_url = {START_URL}\nsso_region = us-east-1\n"
        f"[sso-session b]\nsso_start_url = {START_URL}\nsso_region = us-east-1\n"
    )
    login(session="a")
    login(session="b")
    assert set(Store().index().sessions) == {"a", "b"}
    assert run("logout", "--all").returncode == 0
    assert Store().index().sessions == {}


@pytest.mark.slow
def test_status(sso: RunningEmulator) -> None:
    r = run("status", "--json")
    assert json.loads(r.stdout) == {
        "sessions": [{"session": "corp", "logged_in": False, "credentials": [], "lost_with_daemon": False}],
        "daemon": None,
        "store": {"kind": "keyring", "pid": None, "lost_sessions": []},
        "exports": [],
        "exports_file": "~/.aws/credentials",
        "forwards": [],
        "forwarded_socket": None,
    }
    login()
    token = Store().load_session("corp")
    assert token is not None and token.refresh_token and token.registration
    r = run("status", "--json")
    s = json.loads(r.stdout)["sessions"][0]
    assert s["logged_in"] and s["refreshable"]
    assert s["expires_at"] == iso_z(token.expires_at)
    assert s["registration_expires_at"] == iso_z(token.registration.expires_at)
    text = run("status").stdout
    assert "corp: logged in, token valid for" in text
    for secret in (token.access_token, token.refresh_token, token.registration.client_secret):
        assert secret not in r.stdout + text


@pytest.mark.slow
def test_status_refreshable_ends_with_the_registration(sso: RunningEmulator) -> None:
    from ssocred.adapters.store_index import IndexFile

    login()
    assert json.loads(run("status", "--json").stdout)["sessions"][0]["refreshable"] is True
    store = Store()
    entry = store.index().sessions["corp"]
    ended = dataclasses.replace(entry, registration_expires_at=time.time() - 60)  # time passed, nothing saved
    IndexFile(store.index_path(), 10).update(lambda ix: ix.with_session(ended))
    session = json.loads(run("status", "--json").stdout)["sessions"][0]
    assert session["logged_in"] is True and session["refreshable"] is False
    assert "not refreshable" in run("status").stdout


@pytest.mark.slow
def test_corrupt_item_is_reported_and_kept(sso: RunningEmulator) -> None:
    login()
    service = os.environ["SSOCRED_KEYRING_SERVICE"]
    keyring.set_password(service, "session:corp", "{not json")
    r = run("process", "--sso-session", "corp", "--account-id", "111122223333", "--role-name", "r")
    assert r.returncode == EXIT_STORE
    assert "corrupt" in r.stderr and len(r.stderr.splitlines()) == 1
    assert keyring.get_password(service, "session:corp") == "{not json"
    assert run("status").returncode == 0
    # logout is the fix the message names, and it works on a corrupt item.
    assert run("logout").returncode == 0
    assert keyring.get_password(service, "session:corp") is None


@pytest.mark.slow
def test_import_from_aws_cli_cache(sso: RunningEmulator, home: Path) -> None:
    from ssocred.adapters.oidc import Oidc

    reg = Oidc("us-east-1").register("aws-cli", ("sso:account:access",), auth_code=False)
    path = _cli_cache(home, "corp")
    path.parent.mkdir(parents=True)
    # A token the AWS CLI would have written, already expired so that the import must refresh it.
    path.write_text(
        json.dumps(
            {
                "startUrl": START_URL,
                "region": "us-east-1",
                "accessToken": "cli-access",
                "expiresAt": "2020-01-01T00:00:00UTC",
                "clientId": reg.client_id,
                "clientSecret": reg.client_secret,
                "registrationExpiresAt": iso_z(reg.expires_at),
                "refreshToken": "unknown-refresh",
            }
        )
    )
    r = run("import", "--sso-session", "corp")
    assert r.returncode == 0, r.stderr
    token = Store().load_session("corp")
    assert (
        token is not None and token.access_token == "cli-access" and token.refresh_token == "unknown-refresh"
    )
    assert token.registration is not None and token.registration.client_id == reg.client_id


def test_import_legacy_file_name(sso: RunningEmulator, home: Path) -> None:
    write_config(
        f"[profile old]\nsso_start_url = {START_URL}\nsso_region = us-east-1\n"
        "sso_account_id = 111122223333\nsso_role_name = R\n"
    )
    path = _cli_cache(home, START_URL)
    path.parent.mkdir(parents=True)
    expires = iso_z(time.time() + 3600)
    path.write_text(
        json.dumps(
            {"startUrl": START_URL, "region": "us-east-1", "accessToken": "legacy-at", "expiresAt": expires}
        )
    )
    r = run("import", "--profile", "old")
    assert r.returncode == 0, r.stderr
    token = Store().load_session(START_URL)
    assert token is not None and token.access_token == "legacy-at" and not token.refreshable(time.time())


def test_import_without_cli_token(sso: RunningEmulator) -> None:
    r = run("import")
    assert r.returncode == 1
    assert "aws sso login" in r.stderr


@pytest.mark.slow
def test_export_has_no_refresh_token_and_follows_refreshes(sso: RunningEmulator, home: Path) -> None:
    r = run("login", "--export-aws-cli-cache")
    assert r.returncode == 0, r.stderr
    path = _cli_cache(home, "corp")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    token = Store().load_session("corp")
    assert token is not None and token.refresh_token
    assert data == {
        "startUrl": START_URL,
        "region": "us-east-1",
        "accessToken": token.access_token,
        "expiresAt": iso_z(token.expires_at),
    }
    # After a refresh the file carries the new token.
    now = time.time()
    Store().save_session("corp", dataclasses.replace(token, expires_at=now - 5, issued_at=now - 3605))
    new = fresh_token(Store(), "corp")
    assert json.loads(path.read_text())["accessToken"] == new.access_token
    # logout removes the export.
    assert run("logout").returncode == 0
    assert not path.exists()


@pytest.mark.slow
def test_no_token_on_disk_except_the_export(sso: RunningEmulator, home: Path, tmp_path: Path) -> None:
    assert run("login", "--export-aws-cli-cache").returncode == 0
    r = run("process", "--sso-session", "corp", "--account-id", ACCOUNT, "--role-name", ROLE)
    assert r.returncode == 0, r.stderr
    token = Store().load_session("corp")
    assert token is not None and token.refresh_token and token.registration
    creds = json.loads(r.stdout)
    export = _cli_cache(home, "corp")
    secrets = {
        "refresh token": token.refresh_token.encode(),
        "client secret": token.registration.client_secret.encode(),
        "secret key": creds["SecretAccessKey"].encode(),
        "session token": creds["SessionToken"].encode(),
    }
    found = []
    for path in tmp_path.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            found += [f"{name} in {path}" for name, s in secrets.items() if s in data]
            if token.access_token.encode() in data and path != export:
                found.append(f"access token in {path}")
    assert found == []
