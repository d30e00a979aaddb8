"""credential_process end to end: real boto3 and the AWS CLI, many real processes, faults."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ssocred.adapters.store import Store
from ssocred.errors import EXIT_ACCESS_DENIED, EXIT_CONFIG, EXIT_USAGE
from tests.support.cli import (
    ACCOUNT,
    OTHER_ACCOUNT,
    ROLE,
    age_last_request,
    login,
    process_profile,
    run,
    run_on_a_terminal,
    session_config,
    ssocred_argv,
    ssocred_line,
    write_config,
)
from tests.support.emulator import RunningEmulator, fork_emulator

ARGS = ("process", "--sso-session", "corp", "--account-id", ACCOUNT, "--role-name", ROLE)
ROLES = [(ACCOUNT, "AdministratorAccess"), (ACCOUNT, "ReadOnlyAccess"), (OTHER_ACCOUNT, "ReadOnlyAccess")]


def _boto3_identity(profile: str) -> subprocess.CompletedProcess[str]:
    """A fresh Python process that asks STS who ``profile`` is, through boto3 as any SDK user would."""
    return subprocess.run([sys.executable, "-c", BOTO3_IDENTITY, profile], capture_output=True, text=True,
                          check=False, timeout=120)


BOTO3_IDENTITY = """
import boto3, json, sys
s = boto3.Session(profile_name=sys.argv[1])
print(json.dumps(s.client("sts").get_caller_identity()["Arn"]))
"""


def _age_token(seconds_left: float) -> None:
    store = Store()
    token = store.load_session("corp")
    assert token is not None
    now = time.time()
    store.save_session(
        "corp", dataclasses.replace(token, expires_at=now + seconds_left, issued_at=now + seconds_left - 3600)
    )


@pytest.mark.slow
def test_output_contract(sso: RunningEmulator) -> None:
    login()
    r = run(*ARGS)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert set(data) == {
        "Version",
        "AccessKeyId",
        "SecretAccessKey",
        "SessionToken",
        "Expiration",
        "AccountId",
    }
    assert data["Version"] == 1 and isinstance(data["Version"], int)
    assert data["AccountId"] == ACCOUNT and data["AccessKeyId"].startswith("ASIA")
    assert data["Expiration"].endswith("Z") and len(data["Expiration"]) == 20
    # A second call is a cache hit: the same credentials, no portal call.
    before = sso.stats()["operations"]["GetRoleCredentials"]
    assert json.loads(run(*ARGS).stdout) == data
    assert sso.stats()["operations"]["GetRoleCredentials"] == before


@pytest.mark.slow
def test_boto3_and_aws_cli_through_credential_process(sso: RunningEmulator) -> None:
    write_config(
        session_config("corp")
        + process_profile("dev", ACCOUNT, ROLE)
        + "[profile viakeys]\nssocred_session = corp\n"
        + f"ssocred_account_id = {OTHER_ACCOUNT}\nssocred_role_name = ReadOnlyAccess\n"
        + f"credential_process = {ssocred_line()} process --profile viakeys\nregion = us-east-1\n"
    )
    login()
    out = _boto3_identity("dev")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == f"arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/alice@example.com"
    out = _boto3_identity("viakeys")
    assert out.returncode == 0, out.stderr
    assert f"::{OTHER_ACCOUNT}:assumed-role/ReadOnlyAccess/" in out.stdout
    aws = Path(sys.executable).parent / "aws"
    cli = subprocess.run(
        [
            str(aws) if aws.exists() else "aws",
            "sts",
            "get-caller-identity",
            "--profile",
            "dev",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["Account"] == ACCOUNT


@pytest.mark.slow
def test_botocore_refreshes_short_lived_credentials(sso: RunningEmulator) -> None:
    sso.control(cred_ttl=12)
    write_config(session_config("corp") + process_profile("dev", ACCOUNT, ROLE))
    login()
    script = """
import boto3, json, time
s = boto3.Session(profile_name="dev")
sts = s.client("sts")
keys = []
end = time.time() + 30
while time.time() < end:
    refreshed = len(set(keys)) >= 2
    sts.get_caller_identity()
    keys.append(s.get_credentials().get_frozen_credentials().access_key)
    if refreshed:  # a call was signed with the refreshed keys: nothing more to see
        break
    time.sleep(1)
print(json.dumps(keys))
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=120
    )
    assert out.returncode == 0, out.stderr  # STS answers ExpiredToken to expired keys
    keys = json.loads(out.stdout)
    assert len(set(keys)) >= 2, keys


def _spawn(n: int, roles: list[tuple[str, str]]) -> list[subprocess.Popen[str]]:
    return [
        subprocess.Popen(
            [
                *ssocred_argv(),
                "process",
                "--sso-session",
                "corp",
                "--account-id",
                roles[i % len(roles)][0],
                "--role-name",
                roles[i % len(roles)][1],
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(n)
    ]


def _collect(procs: list[subprocess.Popen[str]]) -> list[dict[str, object]]:
    outs = [p.communicate(timeout=300) for p in procs]
    failed = [(p.returncode, e) for p, (_, e) in zip(procs, outs, strict=True) if p.returncode != 0]
    assert failed == []
    return [json.loads(o) for o, _ in outs]


@pytest.mark.serial  # a process storm: singleflight is proven on a quiet machine
@pytest.mark.slow
def test_64_cold_callers_fetch_once(sso: RunningEmulator) -> None:
    login()
    sso.reset()
    results = _collect(_spawn(64, [(ACCOUNT, ROLE)]))
    assert len({r["AccessKeyId"] for r in results}) == 1
    assert sso.stats()["operations"]["GetRoleCredentials"] == 1


@pytest.mark.serial  # a process storm: singleflight is proven on a quiet machine
@pytest.mark.slow
def test_64_callers_with_expired_token_refresh_once(sso: RunningEmulator) -> None:
    login()
    _age_token(-5)
    sso.reset()
    results = _collect(_spawn(64, ROLES))
    assert len({r["AccessKeyId"] for r in results}) == len(ROLES)
    stats = sso.stats()
    assert stats["create_token"]["refresh_token"] == 1
    assert stats["refresh_token_reuse_rejected"] == 0
    assert stats["operations"]["GetRoleCredentials"] == len(ROLES)


@pytest.mark.slow
@pytest.mark.long
def test_flaky_service_50_cold_calls(
    home: Path, secret_service: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = fork_emulator(
        "--accounts", "25", "--roles", "2", "--fail-rate", "0.2", "--throttle-rate", "0.1", "--seed", "7"
    )
    try:
        for k, v in emu.env().items():
            monkeypatch.setenv(k, v)
        write_config(session_config("corp"))
        token = login(options=("--use-device-code",))
        from ssocred.adapters.portal import Portal

        portal = Portal("us-east-1")
        targets = [
            (a.account_id, role)
            for a in portal.accounts(token.access_token)
            for role in portal.roles(token.access_token, a.account_id)
        ]
        assert len(targets) == 50
        for account, role in targets:
            r = run("process", "--sso-session", "corp", "--account-id", account, "--role-name", role)
            assert r.returncode == 0, r.stderr
        injected = emu.stats()["injected"]
        assert injected["fail"] > 0 and injected["throttle"] > 0
    finally:
        emu.stop()


@pytest.mark.slow
def test_cache_hit_does_not_import_boto3(sso: RunningEmulator) -> None:
    login()
    assert run(*ARGS).returncode == 0
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "ssocred", *ARGS],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    imported = {
        line.split("|")[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")
    }
    assert "ssocred.adapters.store" in imported  # the measurement does see our modules
    assert not {m for m in imported if m.split(".")[0] in ("boto3", "botocore", "argparse")}


@pytest.mark.slow
def test_unassigned_role_is_access_denied(sso: RunningEmulator) -> None:
    login()
    r = run(
        "process",
        "--sso-session",
        "corp",
        "--account-id",
        OTHER_ACCOUNT,
        "--role-name",
        "AdministratorAccess",
    )
    assert r.returncode == EXIT_ACCESS_DENIED
    assert r.stderr == (
        f"ssocred: access denied to role 'AdministratorAccess' in account {OTHER_ACCOUNT}; "
        "see your accounts and roles with: ssocred accounts (ssocred doctor explains more); "
        "an admin can check the assignment with: ssocred discover\n"
    )


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["--sso-session", "corp"], EXIT_USAGE, "needs --account-id, --role-name"),
        (["--bogus"], EXIT_USAGE, "unknown argument '--bogus'"),
        (["--profile"], EXIT_USAGE, "--profile needs a value"),
        (["--profile", "nope"], EXIT_CONFIG, "profile 'nope'"),
    ],
)
def test_bad_arguments(sso: RunningEmulator, args: list[str], code: int, text: str) -> None:
    r = run("process", *args)
    assert r.returncode == code
    assert text in r.stderr and len(r.stderr.splitlines()) == 1 and r.stdout == ""


@pytest.mark.slow
def test_env_and_exec(sso: RunningEmulator) -> None:
    write_config(session_config("corp") + process_profile("dev", ACCOUNT, ROLE))
    login()
    creds = json.loads(run(*ARGS).stdout)
    r = run("env", "--profile", "dev")
    assert r.returncode == 0, r.stderr
    assert f"export AWS_ACCESS_KEY_ID={creds['AccessKeyId']}" in r.stdout
    assert "export AWS_REGION=us-east-1" in r.stdout
    data = json.loads(run("env", "--profile", "dev", "--format", "json").stdout)
    assert data["AWS_SESSION_TOKEN"] == creds["SessionToken"]
    assert "set -gx AWS_SECRET_ACCESS_KEY" in run("env", "--profile", "dev", "--format", "fish").stdout
    powershell = run("env", "--profile", "dev", "--format", "powershell").stdout
    assert f'$Env:AWS_ACCESS_KEY_ID="{creds["AccessKeyId"]}"' in powershell  # as the AWS CLI writes it
    code = (
        "import os, sys; print(os.environ['AWS_ACCESS_KEY_ID']); "
        "sys.exit(0 if 'AWS_PROFILE' not in os.environ else 9)"
    )
    env = dict(os.environ, AWS_PROFILE="dev")
    r = run("exec", "--", sys.executable, "-c", code, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == creds["AccessKeyId"]
    r = run("exec", "--profile", "dev", "--", sys.executable, "-c", "raise SystemExit(42)")
    assert r.returncode == 42


@pytest.mark.slow
def test_login_on_the_terminal_only_when_asked(sso: RunningEmulator, tmp_path: Path) -> None:
    write_config(session_config("corp") + process_profile("dev", ACCOUNT, ROLE)
                 + "[profile optin]\nssocred_session = corp\n"
                 + f"ssocred_account_id = {ACCOUNT}\nssocred_role_name = {ROLE}\nssocred_login = true\n")
    out = tmp_path / "stdout"
    code, tty = run_on_a_terminal([*ssocred_argv(), *ARGS], out)
    assert code == 1 and "is not logged in" in tty  # stderr shares the terminal here
    assert not (tmp_path / "browser.log").exists()  # never a browser unless asked
    code, tty = run_on_a_terminal([*ssocred_argv(), *ARGS, "--login"], out)
    assert code == 0, tty
    assert "Approve the login in your browser" in tty  # the prompt went to /dev/tty ...
    data = json.loads(out.read_text())  # ... and stdout carries only the JSON
    assert data["AccountId"] == ACCOUNT
    assert sso.stats()["create_token"]["authorization_code"] == 1
    assert run("logout").returncode == 0
    code, tty = run_on_a_terminal([*ssocred_argv(), "process", "--profile", "optin"], out)
    assert code == 0, tty
    assert json.loads(out.read_text())["AccountId"] == ACCOUNT
    assert sso.stats()["create_token"]["authorization_code"] == 2


@pytest.mark.slow
def test_remembered_backend_skips_detection_but_never_overrides_a_choice(
    sso: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("login").returncode == 0  # in its own process, which notes the backend in this test's state dir
    remembered = Path(os.environ["SSOCRED_STATE_DIR"]) / "keyring-backend"
    remembered.unlink()
    argv = [sys.executable, "-X", "importtime", "-m", "ssocred", *ARGS]
    first = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    assert first.returncode == 0, first.stderr
    assert "keyring.backends.macOS" in first.stderr  # keyring's detection imports every backend
    assert remembered.read_text() == "keyring.backends.SecretService.Keyring"
    second = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    assert second.returncode == 0, second.stderr
    assert "keyring.backends.macOS" not in second.stderr  # ... which the remembered choice skips
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    r = run(*ARGS)
    assert r.returncode == 6 and "no usable OS keyring" in r.stderr


@pytest.mark.slow
def test_cache_hits_record_use_for_the_daemon(sso: RunningEmulator) -> None:
    login()
    assert run(*ARGS).returncode == 0
    store = Store()
    aged = age_last_request("corp", ACCOUNT, ROLE, 3600)
    assert run(*ARGS).returncode == 0  # a cache hit an hour after the last recorded request ...
    entry = store.index().find_creds("corp", ACCOUNT, ROLE)
    assert entry is not None and entry.last_requested_at > aged + 3000  # ... is recorded
    before = Path(store.index_path()).stat().st_mtime_ns
    assert run(*ARGS).returncode == 0  # a hit right after is not written again
    assert Path(store.index_path()).stat().st_mtime_ns == before


@pytest.mark.slow
def test_corrupt_index_does_not_fail_a_cache_hit(sso: RunningEmulator) -> None:
    login()
    first = run(*ARGS)
    assert first.returncode == 0
    index = Path(Store().index_path())
    index.write_text("{not json")
    r = run(*ARGS)
    assert r.returncode == 0, r.stderr
    assert r.stdout == first.stdout
