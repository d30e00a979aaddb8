"""``ssocred whoami`` when something is wrong: one stderr line, the right exit code, no traceback, no secret.

Every case runs the real command against the emulator and the real keyring; where the failure
is the credential helper's, whoami must say exactly what ``ssocred process`` says, with its exit code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ssocred.adapters.store import Store, creds_key
from ssocred.errors import (
    EXIT_ACCESS_DENIED,
    EXIT_CONFIG,
    EXIT_LOGIN_REQUIRED,
    EXIT_SERVICE,
    EXIT_STORE,
    StoreError,
)
from tests.support.cli import (
    ACCOUNT,
    OTHER_ACCOUNT,
    ROLE,
    login,
    process_profile,
    run,
    session_config,
    ssocred_argv,
    write_config,
)
from tests.support.emulator import RunningEmulator


def secrets() -> list[str]:
    """Every secret the store holds for session corp (token, refresh token, client secret, role keys)."""
    store = Store()
    token = store.load_session("corp")
    found: list[str] = []
    if token is not None:
        found += [token.access_token, token.refresh_token or ""]
        found += [token.registration.client_secret] if token.registration else []
    for account, role in ((ACCOUNT, ROLE), (OTHER_ACCOUNT, ROLE)):
        try:
            creds = store.load_creds("corp", account, role)
        except StoreError:
            continue  # a test made it corrupt: it holds no secret any more
        if creds is not None:
            found += [creds.secret_access_key, creds.session_token]
    return [s for s in found if s]


def one_line_failure(r: subprocess.CompletedProcess[str], code: int) -> str:
    """The single stderr line of a failed command, after checking what every failure must hold."""
    assert r.returncode == code, (r.returncode, r.stderr)
    assert r.stdout == ""
    assert r.stderr.endswith("\n") and r.stderr.count("\n") == 1, r.stderr
    assert "Traceback" not in r.stderr and "ssocred: ssocred:" not in r.stderr
    assert r.stderr.startswith("ssocred: ")
    for secret in secrets():
        assert secret not in r.stderr
    return r.stderr.rstrip("\n")


def profile_running(command: str, name: str = "dev") -> str:
    """A profile whose credential_process line starts with ``command`` (the target in ssocred's keys)."""
    return (f"[profile {name}]\ncredential_process = {command} process --profile {name}\n"
            f"ssocred_session = corp\nssocred_account_id = {ACCOUNT}\nssocred_role_name = {ROLE}\n"
            "region = us-east-1\n")


def without_ssocred_on_path() -> dict[str, str]:
    """The test environment with a PATH on which no ``ssocred`` can be found."""
    return dict(os.environ, PATH=os.pathsep.join(["/usr/bin", "/bin"]))


# --- config syntax faults ------------------------------------------------------------------------


SYNTAX_FAULTS = {
    "outside-any-section": (b"region = eu-west-1\n[profile dev]\n", "line 1 is outside any section"),
    "byte-order-mark": (b"\xef\xbb\xbf[profile dev]\nregion = eu-west-1\n", "starts with a byte order mark"),
    "repeated-section": (b"[profile dev]\n[profile dev]\n", "line 2 repeats the section [profile dev]"),
    "repeated-key": (b"[profile dev]\nregion = a\nregion = b\n", "line 3 repeats the key region"),
    "not-key-value": (b"[profile dev]\nregion\n", "line 2 is neither a [section], a comment nor key = value"),
    "nested-without-equals": (b"[profile dev]\ns3 =\n  max_concurrent_requests\n",
                              "s3 in [profile dev] is an indented block"),
    "not-utf8": (b"[profile dev]\nregion = \xff\n", "line 2 is not valid UTF-8"),
}


@pytest.mark.parametrize("fault", sorted(SYNTAX_FAULTS))
def test_config_syntax_faults_are_one_line(sso: RunningEmulator, fault: str) -> None:
    text, said = SYNTAX_FAULTS[fault]
    Path(os.environ["AWS_CONFIG_FILE"]).write_bytes(text)
    line = one_line_failure(run("whoami", "--profile", "dev"), EXIT_CONFIG)
    assert line.startswith("ssocred: ~/.aws/config") and said in line, line


def test_a_syntax_fault_in_the_credentials_file_is_one_line(sso: RunningEmulator, home: Path) -> None:
    write_config(session_config("corp") + process_profile("dev", ACCOUNT, ROLE))
    (home / ".aws" / "credentials").write_text("[dev]\naws_access_key_id\n")
    line = one_line_failure(run("whoami", "--profile", "dev"), EXIT_CONFIG)
    assert line.startswith("ssocred: ~/.aws/credentials line 2 is neither"), line


def test_a_config_path_that_is_a_directory_is_named(sso: RunningEmulator, home: Path) -> None:
    config = Path(os.environ["AWS_CONFIG_FILE"])
    config.unlink()  # the sso fixture wrote one
    config.mkdir()
    line = one_line_failure(run("whoami", "--profile", "dev"), EXIT_CONFIG)
    assert line.startswith("ssocred: profile 'dev' is not defined: ~/.aws/config is a directory, not a file;"), line


# --- the credential_process command ---------------------------------------------------------------


@pytest.mark.slow
def test_a_command_not_on_path_is_one_line_and_the_fix_works(sso: RunningEmulator) -> None:
    write_config(session_config("corp") + profile_running("ssocred"))
    login()
    env = without_ssocred_on_path()
    line = one_line_failure(run("whoami", "--profile", "dev", env=env), EXIT_CONFIG)
    assert line.startswith("ssocred: credential_process in [profile dev] runs ssocred, which is not on PATH"), line
    assert f"write the absolute path in credential_process ({ssocred_argv()[0]} process ...)" in line

    write_config(session_config("corp") + profile_running(ssocred_argv()[0]))  # the fix, as given
    r = run("whoami", "--profile", "dev", "--json", env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["account"] == ACCOUNT


@pytest.mark.slow
def test_a_command_that_cannot_run_is_one_line(sso: RunningEmulator, tmp_path: Path) -> None:
    plain = tmp_path / "not-executable"
    plain.write_text("#!/bin/sh\nexit 0\n")
    moved = tmp_path / "moved-venv-ssocred"
    moved.write_text(f"#!{tmp_path}/gone/bin/python\nimport sys\n")
    moved.chmod(0o755)
    cases = {
        str(plain): f"and {plain} is not executable",
        str(tmp_path / "missing"): "which does not exist",
        str(moved): f"whose interpreter {tmp_path}/gone/bin/python does not exist",
        "~/bin/ssocred": "but SDKs do not expand ~ in credential_process",
    }
    for command, said in cases.items():
        write_config(session_config("corp") + profile_running(command))
        line = one_line_failure(run("whoami", "--profile", "dev"), EXIT_CONFIG)
        assert said in line, (command, line)


# --- failures of the helper: its own line and exit code, once ---------------------------------------


def process_says(*args: str) -> tuple[int, str]:
    """What ``ssocred process ARGS`` itself exits with and prints on stderr."""
    r = run("process", *args)
    assert r.stdout == "" and r.stderr.count("\n") == 1, r.stderr
    return r.returncode, r.stderr


@pytest.mark.slow
def test_helper_failures_pass_through_unchanged(sso: RunningEmulator) -> None:
    write_config(session_config("corp") + process_profile("dev", ACCOUNT, ROLE)
                 + process_profile("denied", OTHER_ACCOUNT, "AdministratorAccess"))
    target = ("--sso-session", "corp", "--account-id", ACCOUNT, "--role-name", ROLE)

    code, said = process_says(*target)  # not logged in
    assert code == EXIT_LOGIN_REQUIRED
    r = run("whoami", "--profile", "dev")
    assert one_line_failure(r, EXIT_LOGIN_REQUIRED) + "\n" == said

    login()
    code, said = process_says("--sso-session", "corp", "--account-id", OTHER_ACCOUNT,
                              "--role-name", "AdministratorAccess")
    assert code == EXIT_ACCESS_DENIED
    assert one_line_failure(run("whoami", "--profile", "denied"), EXIT_ACCESS_DENIED) + "\n" == said

    sso.revoke()  # the portal rejects the token, and so does the refresh
    code, said = process_says(*target)
    assert code == EXIT_LOGIN_REQUIRED
    assert one_line_failure(run("whoami", "--profile", "dev"), EXIT_LOGIN_REQUIRED) + "\n" == said


@pytest.mark.slow
def test_a_corrupt_cached_item_passes_through_as_a_store_error(sso: RunningEmulator) -> None:
    import keyring

    write_config(session_config("corp") + process_profile("dev", ACCOUNT, ROLE))
    login()
    assert run("whoami", "--profile", "dev").returncode == 0
    keyring.set_password(Store().service, creds_key("corp", ACCOUNT, ROLE), "{not json")
    line = one_line_failure(run("whoami", "--profile", "dev"), EXIT_STORE)
    assert line.startswith(f"ssocred: the stored item {creds_key('corp', ACCOUNT, ROLE)} is corrupt;"), line


def test_another_helper_failing_is_named_with_its_exit_status(sso: RunningEmulator, tmp_path: Path) -> None:
    script = tmp_path / "helper"
    script.write_text("#!/bin/sh\necho 'helper: vault sealed' >&2\necho 'more detail' >&2\nexit 7\n")
    script.chmod(0o755)
    garbage = tmp_path / "garbage"
    garbage.write_text("#!/bin/sh\necho '<html>not json</html>'\n")
    garbage.chmod(0o755)
    write_config(f"[profile other]\ncredential_process = {script}\n[profile garbage]\ncredential_process = {garbage}\n")
    line = one_line_failure(run("whoami", "--profile", "other"), EXIT_SERVICE)
    assert line == ("ssocred: the credential_process of [profile other] failed (exit status 7): helper: vault sealed; "
                    "run: ssocred doctor --profile other")
    line = one_line_failure(run("whoami", "--profile", "garbage"), EXIT_SERVICE)
    assert line.startswith("ssocred: the credential_process of [profile garbage] printed something that is not JSON")


@pytest.mark.slow
def test_whoami_resolves_like_boto3(sso: RunningEmulator) -> None:
    """The same profile through boto3 itself gives the same identity (the provider order is botocore's)."""
    write_config(session_config("corp") + process_profile("dev", ACCOUNT, ROLE))
    login()
    code = ("import boto3, json; i = boto3.Session(profile_name='dev').client('sts', region_name='us-east-1')"
            ".get_caller_identity(); print(json.dumps([i['Account'], i['Arn']]))")
    direct = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    data = json.loads(run("whoami", "--profile", "dev", "--json").stdout)
    assert json.loads(direct.stdout) == [data["account"], data["arn"]]


def test_a_native_sso_profile_without_a_token_is_one_line(sso: RunningEmulator) -> None:
    write_config(session_config("corp")
                 + f"[profile native]\nsso_session = corp\nsso_account_id = {ACCOUNT}\nsso_role_name = {ROLE}\n")
    line = one_line_failure(run("whoami", "--profile", "native"), EXIT_LOGIN_REQUIRED)
    assert line.startswith("ssocred: profile 'native' uses botocore's own SSO provider, which failed: "), line
    assert line.endswith("; run: ssocred doctor --profile native")
