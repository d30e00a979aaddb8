"""``ssocred doctor`` never passes what ``process`` fails: PATH, the store, a failing or foreign portal, the config.

Each case breaks one thing for real (PATH, the keyring item, the index, the state dir, the
server behind ``AWS_ENDPOINT_URL_SSO``, the config file) and checks the doctor's verdict, its exit
code against what ``ssocred process`` or an SDK does, and that no secret shows.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from ssocred.adapters.store import Store, creds_key
from tests.support import cli
from tests.support.cli import ACCOUNT, REGION, ROLE, process_profile, run, session_config, ssocred_argv, write_config
from tests.support.emulator import RunningEmulator
from tests.test_doctor import doctor as report

PROCESS = ("process", "--sso-session", "corp", "--account-id", ACCOUNT, "--role-name", ROLE)
def doctor(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """``ssocred doctor --json ARGS`` as ``test_doctor.doctor`` runs it; no secret in its output either."""
    data = report(*args, env=env)
    text = json.dumps(data)
    for secret in secrets():
        assert secret not in text
    return data


def check(data: dict[str, Any], check_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in data["checks"] if c["id"] == check_id)
    return found


def secrets() -> list[str]:
    """The real secret values the store holds for session corp (what no output may contain)."""
    store = Store()
    try:
        token = store.load_session("corp")
    except Exception:
        return []
    if token is None:
        return []
    found = [token.access_token, token.refresh_token or ""]
    found += [token.registration.client_secret] if token.registration else []
    try:
        creds = store.load_creds("corp", ACCOUNT, ROLE)
    except Exception:
        creds = None
    found += [creds.secret_access_key, creds.session_token] if creds else []
    return [s for s in found if s]


def login() -> None:
    cli.login()


def profile_running(command: str) -> str:
    return (f"[profile dev]\ncredential_process = {command} process --profile dev\n"
            f"ssocred_session = corp\nssocred_account_id = {ACCOUNT}\nssocred_role_name = {ROLE}\n")


def boto3_account(profile: str) -> str:
    """What real boto3 resolves for ``profile`` in a fresh process with this environment."""
    import sys

    code = (f"import boto3; print(boto3.Session(profile_name={profile!r}).client('sts', region_name={REGION!r})"
            ".get_caller_identity()['Account'])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1])
    return done.stdout.strip()


# --- routing: the command as botocore starts it -----------------------------------------------------------


@pytest.mark.slow
def test_a_command_not_on_path_fails_routing_and_the_fix_works(sso: RunningEmulator,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(session_config("corp") + profile_running("ssocred"))
    login()
    monkeypatch.setenv("PATH", os.pathsep.join(["/usr/bin", "/bin"]))
    data = doctor("--profile", "dev")
    c = check(data, "routing")
    assert c["status"] == "fail" and data["exit_code"] == 3
    assert c["summary"] == ("credential_process in [profile dev] runs ssocred, which is not on PATH, so every SDK "
                            "fails for this profile")
    assert c["fix"].startswith(f"write the absolute path in credential_process ({ssocred_argv()[0]} process ...)")
    with pytest.raises(RuntimeError, match="FileNotFoundError"):  # the diagnosis is real: boto3 cannot start it
        boto3_account("dev")

    write_config(session_config("corp") + profile_running(ssocred_argv()[0]))  # the fix, as given
    data = doctor("--profile", "dev")
    c = check(data, "routing")
    assert c == {"id": "routing", "status": "pass", "fix": None,
                 "summary": f"credential_process runs ssocred process ({ssocred_argv()[0]})"}
    assert data["exit_code"] == 0
    assert boto3_account("dev") == ACCOUNT


@pytest.mark.slow
def test_commands_that_would_not_start_fail_routing(sso: RunningEmulator, tmp_path: Path) -> None:
    plain = tmp_path / "bin" / "ssocred"
    plain.parent.mkdir()
    plain.write_text("#!/bin/sh\nexit 0\n")
    moved = tmp_path / "old-venv-ssocred"
    moved.write_text(f"#!{tmp_path}/gone/bin/python\n")
    moved.chmod(0o755)
    cases = {
        str(plain): (f"credential_process in [profile dev] runs {plain}, and {plain} is not executable, so every "
                     "SDK fails for this profile", f"chmod +x {plain}"),
        str(tmp_path / "nothing"): (f"credential_process in [profile dev] runs {tmp_path}/nothing, which does not "
                                    "exist, so every SDK fails for this profile", None),
        str(tmp_path): (f"credential_process in [profile dev] runs {tmp_path}, and {tmp_path} is a directory, so "
                        "every SDK fails for this profile", "point credential_process at the program itself"),
        str(moved): (f"credential_process in [profile dev] runs {moved} ({moved}), whose interpreter "
                     f"{tmp_path}/gone/bin/python does not exist (was its virtualenv moved or removed?)", None),
        "~/bin/ssocred": ("credential_process in [profile dev] runs ~/bin/ssocred, but SDKs do not expand ~ in "
                          "credential_process", f"write the full path: {Path.home()}/bin/ssocred"),
        "'ssocred": ("credential_process in [profile dev] cannot be split into words as botocore does (No closing "
                     "quotation), so every SDK fails for this profile", "fix its quoting"),
    }
    for command, (summary, fix) in cases.items():
        write_config(session_config("corp") + profile_running(command))
        data = doctor("--profile", "dev")
        c = check(data, "routing")
        assert (c["status"], c["summary"], data["exit_code"]) == ("fail", summary, 3), command
        assert fix is None or c["fix"] == fix, (command, c["fix"])


@pytest.mark.slow
def test_a_relative_command_path_is_a_warning(sso: RunningEmulator, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(Path(ssocred_argv()[0]).parent.parent)
    relative = f"./bin/{Path(ssocred_argv()[0]).name}"
    write_config(session_config("corp") + profile_running(relative))
    c = check(doctor("--profile", "dev"), "routing")
    assert c["status"] == "warn" and "a path relative to the current directory" in c["summary"]
    assert c["fix"] == f"write its absolute path: {os.path.abspath(relative)}"


# --- cache: what process, status and logout read ---------------------------------------------------------


@pytest.mark.slow
def test_the_cache_check_reports_the_cached_role(sso: RunningEmulator) -> None:
    write_config(session_config("corp") + process_profile("dev", ACCOUNT, ROLE))
    login()
    c = check(doctor("--profile", "dev"), "cache")
    assert c == {"id": "cache", "status": "pass", "fix": None, "summary":
                 "state dir and store index usable (1 session, 0 cached roles); no credentials cached for role "
                 f"{ROLE} in {ACCOUNT} (the first call fetches them)"}
    assert run(*PROCESS).returncode == 0
    c = check(doctor("--profile", "dev"), "cache")
    assert c["status"] == "pass" and c["summary"].startswith(
        "state dir and store index usable (1 session, 1 cached role); credentials for role "
        f"{ROLE} in {ACCOUNT} cached, valid for ")


@pytest.mark.slow
def test_a_corrupt_cached_credentials_item_fails_like_process(sso: RunningEmulator) -> None:
    import keyring

    write_config(session_config("corp") + process_profile("dev", ACCOUNT, ROLE))
    login()
    assert run(*PROCESS).returncode == 0
    keyring.set_password(Store().service, creds_key("corp", ACCOUNT, ROLE), "{not json")
    failed = run(*PROCESS)
    assert failed.returncode == 6
    data = doctor("--profile", "dev")
    c = check(data, "cache")
    assert c["status"] == "fail" and data["exit_code"] == 6
    assert f"ssocred: {c['summary']}; {c['fix']}\n" == failed.stderr  # the same words as process


@pytest.mark.slow
def test_a_corrupt_index_fails_with_the_store_exit_code(sso: RunningEmulator) -> None:
    write_config(session_config("corp") + process_profile("dev", ACCOUNT, ROLE))
    login()
    index = Store().index_path()
    index.write_text('{"version": 1, "sessions": {"corp": ')
    status = run("status")
    assert status.returncode == 6
    data = doctor("--profile", "dev")
    c = check(data, "cache")
    assert c["status"] == "fail" and data["exit_code"] == 6
    assert c["summary"] == f"the store index {index} is corrupt"
    assert c["fix"] == f"remove it (rm {index}; it holds no secrets) and log in again"
    index.unlink()  # the fix, as given (the session is still in the keyring)
    login()
    assert doctor("--profile", "dev")["exit_code"] == 0


@pytest.mark.slow
def test_an_unusable_state_dir_fails_with_the_exit_code_of_process(sso: RunningEmulator, tmp_path: Path) -> None:
    write_config(session_config("corp") + process_profile("dev", ACCOUNT, ROLE))
    login()
    state = Path(os.environ["SSOCRED_STATE_DIR"])
    shutil.rmtree(state)
    state.write_text("not a directory")
    failed = run(*PROCESS)
    assert failed.returncode != 0 and failed.stderr.count("\n") == 1
    data = doctor("--profile", "dev")
    assert data["exit_code"] == failed.returncode
    failures = [c for c in data["checks"] if c["status"] == "fail"]
    assert failures and failures[0]["summary"].startswith(f"{state} is a file")


# --- endpoint: the portal's own JSON, or a failure ---------------------------------------------------------


@pytest.mark.slow
def test_a_portal_answering_5xx_fails_the_endpoint_check(sso: RunningEmulator) -> None:
    write_config(session_config("corp") + process_profile("dev", ACCOUNT, ROLE))
    login()
    sso.control(fail_rate=1.0)
    try:
        data = doctor("--profile", "dev")
        process = run(*PROCESS, env={**os.environ, "SSOCRED_TIMEOUT": "3"})
    finally:
        sso.control(fail_rate=0.0)
    c = check(data, "endpoint")
    assert c["status"] == "fail" and data["exit_code"] == 5
    assert c["summary"] == (f"{sso.url} answered with a server error (HTTP 500, InternalServerException): the SSO "
                            "portal, or a proxy in front of it, is failing")
    assert check(data, "access")["status"] == "skip"
    assert process.returncode == 5


class Foreign:
    """A local server that answers every request with one fixed reply, or per token with ``by_token``."""

    def __init__(self, status: int, content_type: str, body: bytes,
                 by_token: dict[str, tuple[int, str, bytes]] | None = None) -> None:
        replies = {"": (status, content_type, body), **(by_token or {})}
        self.headers: list[str] = []
        seen = self.headers

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # the portal's operations are all GETs
                dump = "; ".join(f"{k}: {v}" for k, v in self.headers.items())
                seen.append(dump)
                token = self.headers.get("x-amz-sso_bearer_token", "")
                code, ctype, data = replies.get(token, replies[""])
                data = data.replace(b"{headers}", json.dumps(dump).encode()[1:-1])
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @contextmanager
    def running(self) -> Iterator[Foreign]:
        self.thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()


PROXY_PAGE = b"<html><head><title>403 Forbidden</title></head><body>Blocked by the corporate proxy</body></html>"
FOREIGN = {
    "proxy-html-403": ((403, "text/html", PROXY_PAGE),
                       "answered HTTP 403 with an HTML page, not the SSO portal's JSON"),
    "captive-html-200": ((200, "text/html; charset=utf-8", b"<!DOCTYPE html><html>Guest Wi-Fi</html>"),
                         "answered HTTP 200 with an HTML page, not the SSO portal's JSON"),
    "text-502": ((502, "text/plain", b"Bad Gateway"), "answered HTTP 502 with plain text, not the SSO portal's JSON"),
    "truncated-json-200": ((200, "application/json", b'{"accountList": [{"accountId": "1'),
                           "answered HTTP 200 with truncated JSON, not the SSO portal's JSON"),
    "empty-200": ((200, "application/json", b""), "answered HTTP 200 with an empty body, not the SSO portal's JSON"),
    "empty-json-200": ((200, "application/json", b"{}"),
                       "answered HTTP 200 without an account list, which the SSO portal never does"),
    "json-400": ((400, "application/json", b'{"__type": "BadRequestException", "message": "{headers}"}'),
                 "answered HTTP 400, BadRequestException, where the SSO portal answers HTTP 401"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(FOREIGN))
def test_a_foreign_answer_fails_the_endpoint_check(sso: RunningEmulator, case: str) -> None:
    reply, said = FOREIGN[case]
    write_config(session_config("corp") + process_profile("dev", ACCOUNT, ROLE))
    login()
    with Foreign(*reply).running() as server:
        data = doctor("--profile", "dev", env={**os.environ, "AWS_ENDPOINT_URL_SSO": server.url})
        process = run(*PROCESS, env={**os.environ, "AWS_ENDPOINT_URL_SSO": server.url, "SSOCRED_TIMEOUT": "3"})
    c = check(data, "endpoint")
    assert c["status"] == "fail" and data["exit_code"] == 5, c
    assert c["summary"].startswith(f"{server.url} {said}"), c["summary"]
    assert "HTTPS_PROXY" in c["fix"]
    assert check(data, "access")["status"] == "skip"
    assert process.returncode != 0  # process fails too: the doctor passed nothing it fails


@pytest.mark.slow
def test_a_failure_behind_a_working_probe_fails_access_without_a_secret(sso: RunningEmulator) -> None:
    """The probe's made-up token gets the portal's 401; the real token gets a 500 that echoes every header."""
    write_config(session_config("corp") + process_profile("dev", ACCOUNT, ROLE))
    login()
    token = Store().load_session("corp")
    assert token is not None
    echo = (500, "application/json", b'{"__type": "InternalServerException", "message": "{headers}"}')
    probe = (401, "application/json", b'{"__type": "UnauthorizedException", "message": "Session token not found"}')
    with Foreign(*echo, by_token={"ssocred-doctor-probe": probe}).running() as server:
        data = doctor("--profile", "dev", env={**os.environ, "AWS_ENDPOINT_URL_SSO": server.url,
                                               "SSOCRED_TIMEOUT": "3"})
    assert any(token.access_token in h for h in server.headers)  # the echo really carried it
    assert check(data, "endpoint")["status"] == "pass"
    c = check(data, "access")
    assert c["status"] == "fail" and data["exit_code"] == 5
    assert c["summary"].startswith("could not list your roles: ")


# --- config: the path and the region named precisely --------------------------------------------------------


@pytest.mark.slow
def test_config_path_problems_are_named(sso: RunningEmulator, tmp_path: Path) -> None:
    config = Path(os.environ["AWS_CONFIG_FILE"])
    config.unlink()
    config.mkdir()
    cases = [("~/.aws/config is a directory, not a file",
              "move ~/.aws/config out of the way and run: ssocred configure (or point AWS_CONFIG_FILE at your "
              "config file)")]
    data = doctor("--profile", "dev")
    assert (check(data, "config")["summary"], check(data, "config")["fix"]) == cases[0]
    assert data["exit_code"] == 3
    process = run("process", "--profile", "dev")
    assert process.returncode == 3 and process.stderr == (
        "ssocred: profile 'dev' is not defined: ~/.aws/config is a directory, not a file; move ~/.aws/config out of "
        "the way and run: ssocred configure (or point AWS_CONFIG_FILE at your config file)\n")

    config.rmdir()
    config.symlink_to(config)
    data = doctor("--sso-session", "corp")
    c = check(data, "config")
    assert c["summary"] == "~/.aws/config is a symbolic link that leads back to itself (a loop)"
    assert data["exit_code"] == 3
    process = run(*PROCESS[:1], "--profile", "dev")
    assert process.returncode == 3 and "leads back to itself" in process.stderr

    config.unlink()
    config.symlink_to(tmp_path / "elsewhere")
    data = doctor("--sso-session", "corp")
    assert check(data, "config")["summary"] == f"~/.aws/config is a symbolic link to {tmp_path}/elsewhere, which " \
                                               "does not exist"
    assert data["exit_code"] == 3

    data = doctor("--sso-session", "corp", env={**os.environ, "AWS_CONFIG_FILE": os.devnull})
    assert check(data, "config")["summary"] == (f"{os.devnull} is not a regular file (a device or a pipe), so "
                                                "botocore reads no config from it")
    assert data["exit_code"] == 3


@pytest.mark.parametrize("region", ["us-east", "US-EAST-1", "us_east_1", "https://portal.example.com"])
def test_an_invalid_sso_region_is_a_config_error(sso: RunningEmulator, region: str) -> None:
    write_config(session_config("corp").replace(f"sso_region = {REGION}", f"sso_region = {region}")
                 + process_profile("dev", ACCOUNT, ROLE))
    data = doctor("--profile", "dev")
    c = check(data, "config")
    assert c == {"id": "config", "status": "fail",
                 "summary": f"sso-session 'corp' in ~/.aws/config has sso_region = {region}, which is not a region "
                            "name",
                 "fix": "set sso_region = <region> in [sso-session corp] to the region of your IAM Identity Center "
                        "(e.g. us-east-1, eu-west-1)"}
    assert data["exit_code"] == 3
    assert check(data, "endpoint")["status"] == "skip" and check(data, "token")["status"] == "skip"
