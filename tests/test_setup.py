"""``ssocred accounts``, ``ssocred configure`` (interactive and with flags) and ``ssocred whoami``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ssocred.errors import EXIT_ACCESS_DENIED, EXIT_CONFIG, EXIT_LOGIN_REQUIRED, EXIT_USAGE
from tests.support.cli import (
    ACCOUNT,
    OTHER_ACCOUNT,
    REGION,
    ROLE,
    START_URL,
    login,
    process_profile,
    run,
    session_config,
    write_config,
)
from tests.support.emulator import RunningEmulator


def _config_text() -> str:
    return Path(os.environ["AWS_CONFIG_FILE"]).read_text()


@pytest.mark.slow
def test_accounts_lists_every_account_and_role(sso: RunningEmulator) -> None:
    login()
    r = run("accounts", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data == {"session": "corp", "accounts": [
        {"account_id": ACCOUNT, "name": "Development", "email": "dev@example.com",
         "roles": ["AdministratorAccess", "ReadOnlyAccess"]},
        {"account_id": OTHER_ACCOUNT, "name": "Production", "email": "prod@example.com",
         "roles": ["ReadOnlyAccess"]},
    ]}
    text = run("accounts", "--sso-session", "corp").stdout
    assert f"{ACCOUNT}  Development  AdministratorAccess, ReadOnlyAccess" in text
    assert "2 accounts, 3 roles in SSO session 'corp'." in text


@pytest.mark.slow
def test_accounts_walks_every_page(sso: RunningEmulator) -> None:
    login()
    accounts = [{"accountId": f"{i:012d}", "accountName": f"Team {i:03d}", "roles": ["ReadOnlyAccess"]}
                for i in range(1, 251)]
    sso.set_directory({"accounts": accounts})
    sso.reset()
    data = json.loads(run("accounts", "--json", "--max-workers", "4", "--rate", "500").stdout)
    assert [a["account_id"] for a in data["accounts"]] == [f"{i:012d}" for i in range(1, 251)]
    ops = sso.stats()["operations"]
    assert ops["ListAccounts"] == 3  # pages of 100
    assert ops["ListAccountRoles"] == 250


def test_accounts_not_logged_in_is_one_line(sso: RunningEmulator) -> None:
    r = run("accounts")
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "ssocred login" in r.stderr


@pytest.mark.slow
def test_whoami_through_credential_process(sso: RunningEmulator) -> None:
    write_config(session_config("corp") + process_profile("dev", ACCOUNT, ROLE))
    login()
    r = run("whoami", "--profile", "dev", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["account"] == ACCOUNT
    assert data["arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/alice@example.com"
    assert data["user_id"].endswith(":alice@example.com")
    assert data["credential_source"] == "custom-process"
    env = dict(os.environ, AWS_PROFILE="dev")
    text = run("whoami", env=env).stdout
    assert f"Account: {ACCOUNT}" in text and "UserId:" in text and "profile 'dev'" in text


@pytest.mark.slow
def test_whoami_errors_are_one_line(sso: RunningEmulator) -> None:
    write_config(session_config("corp") + process_profile("dev", ACCOUNT, ROLE))
    r = run("whoami", "--profile", "nope")
    assert r.returncode == EXIT_CONFIG and r.stderr.count("\n") == 1 and "'nope'" in r.stderr
    r = run("whoami", "--profile", "dev")  # not logged in: credential_process's own line and exit code
    assert r.returncode == EXIT_LOGIN_REQUIRED
    assert r.stderr.count("\n") == 1 and "ssocred login" in r.stderr and "Traceback" not in r.stderr
    assert "ssocred: ssocred:" not in r.stderr


@pytest.mark.slow
def test_configure_with_flags_writes_session_and_profile(sso: RunningEmulator) -> None:
    write_config("# mine\n[default]\nregion = eu-west-1\n")
    r = run("configure", "--no-input", "--start-url", START_URL, "--sso-region", REGION, "--session-name", "work",
            "--account-id", ACCOUNT, "--role-name", "AdministratorAccess", "--profile-name", "dev-admin",
            "--region", "eu-west-2", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["profile"] == "dev-admin" and data["login"] == "pkce" and data["session_written"] is True
    text = _config_text()
    assert text.startswith("# mine\n[default]\nregion = eu-west-1\n")
    assert f"[sso-session work]\nsso_start_url = {START_URL}\nsso_region = {REGION}\n" in text
    assert "ssocred_managed" not in text  # a profile the user named is not pruned later
    assert "sso_account_id" not in text
    who = json.loads(run("whoami", "--profile", "dev-admin", "--json").stdout)
    assert who["arn"].startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/AdministratorAccess/")
    # Again: already logged in, nothing new to write for the session.
    again = json.loads(run("configure", "--no-input", "--start-url", START_URL, "--sso-region", REGION,
                           "--session-name", "work", "--account-id", ACCOUNT, "--role-name", ROLE,
                           "--profile-name", "dev-ro", "--json").stdout)
    assert again["login"] == "reused" and again["session_written"] is False


@pytest.mark.slow
def test_configure_interactive(sso: RunningEmulator) -> None:
    answers = "\n".join([
        "not a url",          # re-asked
        START_URL,
        "nowhere",            # re-asked
        REGION,
        "",                   # session name: default from the URL
        "",                   # scopes: default
        "2",                  # account: Production (sorted by name: Development, Production)
        "",                   # client region: the SSO region
        "",                   # output: json
        "prod",               # profile name
    ]) + "\n"
    r = run("configure", input_text=answers)
    assert r.returncode == 0, r.stderr
    assert "SSO start URL: " in r.stderr and "https://" in r.stderr  # the hint after the bad URL
    assert "is not a region name" in r.stderr
    assert "Using the only role in Production: ReadOnlyAccess" in r.stderr
    text = _config_text()
    assert "[sso-session d-1234567890]" in text
    assert "sso_registration_scopes = sso:account:access" in text
    assert "[profile prod]\ncredential_process = " in text
    assert f"--account-id {OTHER_ACCOUNT} --role-name ReadOnlyAccess\nregion = {REGION}\noutput = json\n" in text
    assert "Profile 'prod'" in r.stdout


@pytest.mark.slow
def test_configure_all_populates(sso: RunningEmulator) -> None:
    write_config("")
    r = run("configure", "--no-input", "--start-url", START_URL, "--sso-region", REGION, "--session-name", "corp",
            "--all", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert sorted(data["populate"]["added"]) == [
        "Development.AdministratorAccess", "Development.ReadOnlyAccess", "Production.ReadOnlyAccess"]
    assert _config_text().count("ssocred_managed = corp") == 3


@pytest.mark.slow
@pytest.mark.parametrize(("args", "code", "text"), [
    (["--no-input"], EXIT_USAGE, "pass --start-url"),
    (["--no-input", "--start-url", "http://x"], EXIT_USAGE, "--start-url 'http://x'"),
    (["--no-input", "--start-url", START_URL, "--sso-region", "moon-1"], EXIT_USAGE, "not a region name"),
    (["--no-input", "--start-url", START_URL, "--sso-region", REGION, "--session-name", "a b"], EXIT_USAGE,
     "letters, digits"),
    (["--no-input", "--start-url", START_URL, "--sso-region", REGION, "--session-name", "corp",
      "--account-id", "999999999999"], EXIT_ACCESS_DENIED, "not among your 2 accounts"),
    (["--no-input", "--start-url", START_URL, "--sso-region", REGION, "--session-name", "corp",
      "--account-id", OTHER_ACCOUNT, "--role-name", "AdministratorAccess"], EXIT_ACCESS_DENIED,
     "you have: ReadOnlyAccess"),
])
def test_configure_bad_input_is_one_line(sso: RunningEmulator, args: list[str], code: int, text: str) -> None:
    before = _config_text()
    r = run("configure", *args, input_text="")
    assert r.returncode == code, r.stderr
    last = r.stderr.strip().splitlines()[-1]  # after the conversation, the error is one line
    assert last.startswith("ssocred: ") and text in last and "Traceback" not in r.stderr
    if code == EXIT_USAGE:
        assert _config_text() == before  # nothing written on bad input


@pytest.mark.slow
def test_configure_refuses_a_profile_botocore_would_route_around(sso: RunningEmulator) -> None:
    write_config(session_config("corp") + f"[profile dev]\nsso_session = corp\nsso_account_id = {ACCOUNT}\n"
                 f"sso_role_name = {ROLE}\n")
    before = _config_text()
    r = run("configure", "--no-input", "--start-url", START_URL, "--sso-region", REGION, "--session-name", "corp",
            "--account-id", ACCOUNT, "--role-name", ROLE, "--profile-name", "dev")
    assert r.returncode == EXIT_CONFIG and "route around credential_process" in r.stderr
    assert _config_text().startswith(before.rstrip("\n"))
    assert "credential_process" not in _config_text()


def test_populate_text_lists_at_most_25_names_per_kind() -> None:
    from ssocred.cli.render import text_populate

    data = {"dry_run": False, "added": [f"p{i}" for i in range(30)], "renamed": [], "updated": [],
            "removed": ["gone"], "skipped": [], "profiles": 30, "accounts": 15, "session": "corp", "unchanged": 0,
            "changed": True, "config": "~/.aws/config"}
    lines = text_populate(data).splitlines()
    assert lines[:2] == ["  + p0", "  + p1"] and "  + p24" in lines and "  + p25" not in lines
    assert "  + ... and 5 more (--json lists them all)" in lines and "  - gone" in lines
    assert lines[-1].startswith("30 profiles for 15 accounts of SSO session 'corp': 30 added") and \
        lines[-1].endswith("Wrote ~/.aws/config.")
