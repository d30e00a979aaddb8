"""``ssocred login`` against the emulator over HTTP, with the token landing in the real keyring."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ssocred.adapters.store import Store
from ssocred.errors import EXIT_ACCESS_DENIED, EXIT_CONFIG, EXIT_INTERRUPTED, EXIT_SERVICE, EXIT_STORE
from tests.support.cli import START_URL, run, session_config, ssocred_argv, write_config
from tests.support.emulator import RunningEmulator


def _stored(key: str = "corp") -> object:
    return Store().load_session(key)


@pytest.mark.slow
def test_pkce_login_stores_token_in_keyring(sso: RunningEmulator, tmp_path: Path) -> None:
    r = run("login", "--sso-session", "corp")
    assert r.returncode == 0, r.stderr
    assert "Logged in to SSO session 'corp' (via pkce)" in r.stdout
    stats = sso.stats()
    assert stats["create_token"]["authorization_code"] == 1
    assert stats["operations"]["RegisterClient"] == 1
    token = Store().load_session("corp")
    assert token is not None and token.refresh_token and token.registration is not None
    assert "authorization_code" in token.registration.grant_types
    # The URL was printed and opened; its shape follows the AWS CLI's (PROTOCOL §3.2).
    opened = (tmp_path / "browser.log").read_text().strip()
    assert opened in r.stdout
    assert opened.startswith(sso.url + "/authorize?response_type=code&client_id=")
    assert "&scopes=sso%3Aaccount%3Aaccess&code_challenge=" in opened


@pytest.mark.slow
def test_second_login_reuses_the_registration(sso: RunningEmulator) -> None:
    assert run("login").returncode == 0
    assert run("login").returncode == 0
    stats = sso.stats()
    assert stats["operations"]["RegisterClient"] == 1
    assert stats["create_token"]["authorization_code"] == 2


@pytest.mark.slow
def test_device_code_login(sso: RunningEmulator) -> None:
    r = run("login", "--sso-session", "corp", "--use-device-code", "--json")
    assert r.returncode == 0, r.stderr
    assert "code:" in r.stderr  # prompts go to stderr when stdout carries JSON
    import json

    data = json.loads(r.stdout)
    assert data["flow"] == "device-code" and data["refreshable"] is True
    assert "SecretService" in data["store"]
    assert sso.stats()["create_token"]["device_code"] == 1
    assert _stored() is not None


@pytest.mark.slow
@pytest.mark.parametrize("env", [{"SSH_CONNECTION": "10.0.0.1 5 10.0.0.2 22"}, {}])
def test_headless_machines_fall_back_to_device_code(sso: RunningEmulator, env: dict[str, str]) -> None:
    environ = {k: v for k, v in os.environ.items() if k != "BROWSER"}
    environ.update(env)
    if "SSH_CONNECTION" in env:
        environ["DISPLAY"] = ":0"
    r = run("login", env=environ)
    assert r.returncode == 0, r.stderr
    assert "using the device code flow" in r.stdout
    assert sso.stats()["create_token"]["device_code"] == 1


def test_legacy_profile_uses_device_code(sso: RunningEmulator) -> None:
    write_config(
        f"[profile old]\nsso_start_url = {START_URL}\nsso_region = us-east-1\n"
        "sso_account_id = 111122223333\nsso_role_name = R\n"
    )
    r = run("login", "--profile", "old")
    assert r.returncode == 0, r.stderr
    assert "device code" in r.stdout
    assert Store().load_session(START_URL) is not None


def test_denied_in_browser(sso: RunningEmulator) -> None:
    sso.control(deny_authorize=True)
    r = run("login")
    assert r.returncode == EXIT_ACCESS_DENIED
    assert r.stderr.strip().count("\n") == 0
    assert "not approved in the browser (access_denied)" in r.stderr
    assert _stored() is None


def test_state_mismatch_is_refused(sso: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_BROWSER_STATE", "00000000-0000-4000-8000-000000000000")
    r = run("login")
    assert r.returncode == EXIT_ACCESS_DENIED
    assert "state that does not match" in r.stderr
    assert sso.stats()["create_token"]["authorization_code"] == 0
    assert _stored() is None


@pytest.mark.slow
def test_device_code_expiry(sso: RunningEmulator) -> None:
    sso.control(approve_after_polls=10_000, device_ttl=2)
    r = run("login", "--use-device-code", timeout=60)
    assert r.returncode == 1
    assert "device code expired" in r.stderr
    assert _stored() is None


@pytest.mark.slow
def test_flaky_service_is_retried(sso: RunningEmulator) -> None:
    # A quarter of the calls fail: over ~37 calls, none failing is ~1e-5 likely, and a call
    # failing all 8 of its attempts ~6e-4.
    sso.control(fail_rate=0.15, throttle_rate=0.1)
    for _ in range(12):
        r = run("login", "--use-device-code")
        assert r.returncode == 0, r.stderr
    injected = sso.stats()["injected"]
    assert injected["fail"] + injected["throttle"] > 0


@pytest.mark.slow
def test_unreachable_endpoint(sso: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSO_OIDC", "http://127.0.0.1:9")
    r = run("login")
    assert r.returncode == EXIT_SERVICE
    assert "cannot reach http://127.0.0.1:9" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("config", "args", "expected"),
    [
        (session_config("corp"), ["--profile", "nope"], "profile 'nope'"),
        (session_config("corp"), ["--sso-session", "other"], "sso-session 'other'"),
        ("[profile plain]\nregion = us-east-1\n", ["--profile", "plain"], "no SSO settings"),
        ("[profile dev]\nsso_session = corp\n", ["--profile", "dev"], "corp"),
        (
            "[sso-session corp]\nsso_start_url = http://d-1.awsapps.com/start\nsso_region = us-east-1\n",
            ["--sso-session", "corp"],
            "must use https",
        ),
    ],
)
def test_bad_configuration(sso: RunningEmulator, config: str, args: list[str], expected: str) -> None:
    write_config(config)
    r = run("login", *args)
    assert r.returncode == EXIT_CONFIG, r.stderr
    assert expected in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("ssocred: ")
    assert sso.stats()["operations"]["RegisterClient"] == 0


def test_no_keyring_backend(sso: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    r = run("login")
    assert r.returncode == EXIT_STORE
    assert "keyring" in r.stderr.lower() and "Traceback" not in r.stderr
    assert sso.stats()["operations"]["RegisterClient"] == 0


@pytest.mark.slow
def test_ctrl_c_during_login_leaves_nothing_and_frees_the_lock(
    sso: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = dict(os.environ, FAKE_BROWSER_IGNORE="1")
    proc = subprocess.Popen(
        [*ssocred_argv(), "login"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    for line in proc.stdout:
        if "/authorize?" in line or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == EXIT_INTERRUPTED
    assert "interrupted" in err and "Traceback" not in err
    assert _stored() is None
    r = run("login", timeout=30)  # the login lock was released
    assert r.returncode == 0, r.stderr


@pytest.mark.slow
def test_parallel_logins_open_one_browser(
    sso: RunningEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FAKE_BROWSER_DELAY", "2")
    procs = [
        subprocess.Popen(
            [*ssocred_argv(), "login"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    assert sso.stats()["create_token"]["authorization_code"] == 1
    assert len((tmp_path / "browser.log").read_text().splitlines()) == 1
    assert sum("reused the login" in o for o, _ in outs) == 2


@pytest.mark.slow
def test_login_output_has_no_secret(sso: RunningEmulator) -> None:
    r = run("login", "--json")
    token = Store().load_session("corp")
    assert token is not None and token.refresh_token and token.registration
    for secret in (token.access_token, token.refresh_token, token.registration.client_secret):
        assert secret not in r.stdout + r.stderr


def test_help_lists_commands() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "ssocred", "--help"], capture_output=True, text=True, check=False
    )
    assert r.returncode == 0
    for cmd in ("login", "logout", "status", "import", "process", "emulator", "demo"):
        assert cmd in r.stdout
