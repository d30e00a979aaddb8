"""``ssocred login --remote``: the PKCE login on a fixed loopback port, for a browser reached through ``ssh -L``.

A real headless Chromium approves the printed URL in the emulator (see tests/support/chromium.py for
``SSOCRED_REQUIRE_BROWSER``); the other tests play the browser with a plain HTTP GET. Every port is
one the test picked free (bind port 0, close), so parallel tests never share one.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import pytest

from ssocred.adapters.store import Store
from ssocred.errors import EXIT_CONFIG, EXIT_INTERRUPTED, EXIT_LOGIN_REQUIRED, EXIT_SERVICE, EXIT_USAGE
from ssocred.model.sso import Token
from ssocred.usecases import remote_login
from tests.support.chromium import WAIT, LoginProcess, click_and_reach_callback
from tests.support.cli import START_URL, run, session_config, write_config
from tests.support.emulator import RunningEmulator

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

    from tests.support.secret_service import PrivateSecretService

_URL_LINE = re.compile(r"^ +(http://\S+/authorize\?\S+)$", re.M)


def free_port() -> int:
    """A loopback port nothing listens on right now (the kernel's pick for port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextmanager
def listening(port: int) -> Iterator[None]:
    """Another program holding ``127.0.0.1:port``."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        yield


def callback(port: int) -> str:
    return f"http://127.0.0.1:{port}/oauth/callback"


def printed_url(text: Callable[[], str], login: LoginProcess) -> str:
    """The ``/authorize`` URL the login prints (on stdout, or stderr with ``--json``), waiting for it."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        found = _URL_LINE.search(text())
        if found:
            return found.group(1)
        if login.proc.poll() is not None:
            break
        time.sleep(0.05)
    pytest.fail(f"no /authorize URL; stdout={login.stdout()!r} stderr={login.stderr()!r}")


def approve(url: str) -> str:
    """Be the laptop's browser against the auto-approving emulator: GET, follow the redirect to the callback."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=WAIT) as answer:
        page: str = answer.read().decode()
        assert urlsplit(answer.geturl()).path == "/oauth/callback", answer.geturl()
    return page


def redirect_port(url: str) -> int | None:
    return urlsplit(parse_qs(urlsplit(url).query)["redirect_uri"][0]).port


@pytest.fixture
def stand_in_log(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """``BROWSER`` names the scripted stand-in, which records every URL it is given: ssocred must give it none."""
    stand_in = Path(__file__).parent / "support" / "browser.py"
    log = tmp_path / "launched-browser.log"
    monkeypatch.setenv("BROWSER", f"{sys.executable} {stand_in} %s")
    monkeypatch.setenv("FAKE_BROWSER_LOG", str(log))
    monkeypatch.setenv("FAKE_BROWSER_IGNORE", "1")
    return log


@pytest.fixture
def remote_corp(
    home: Path, secret_service: PrivateSecretService, manual_emu: RunningEmulator, stand_in_log: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> RunningEmulator:
    """Real keyring, a manual-approve emulator, ``[sso-session corp]``, and an SSH session's environment."""
    secret_service.ensure_running()
    write_config(session_config("corp"))
    # Documentation addresses (RFC 5737): only ever read from the environment, never contacted.
    monkeypatch.setenv("SSH_CONNECTION", "203.0.113.5 50022 198.51.100.7 2222")
    monkeypatch.setenv("USER", "alice")
    return manual_emu


def _printed(login: LoginProcess, text: str, timeout: float = 30.0) -> str:
    """The login's stdout once it holds ``text`` (printed after the URL the test already waited for)."""
    deadline = time.monotonic() + timeout
    while text not in login.stdout():
        assert time.monotonic() < deadline, f"{text!r} not printed; stdout={login.stdout()!r}"
        time.sleep(0.02)
    return login.stdout()


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.secret_service
def test_chromium_approves_and_the_redirect_reaches_the_fixed_port(
    driver: WebDriver, remote_corp: RunningEmulator, stand_in_log: Path, tmp_path: Path
) -> None:
    port = free_port()
    login = LoginProcess(tmp_path, ("--sso-session", "corp", "--remote", "--port", str(port)))
    try:
        url = login.authorize_url()
        assert url.startswith(remote_corp.url + "/authorize?") and redirect_port(url) == port
        out = _printed(login, "ssocred login --sso-session corp --use-device-code")  # the line after the URL
        assert f"    ssh -L {port}:127.0.0.1:{port} -p 2222 alice@198.51.100.7\n" in out
        driver.get(url)
        page = click_and_reach_callback(driver, "allow", callback(port))
        assert "Login complete" in page
        assert login.wait() == 0, login.stderr()
        assert "Logged in to SSO session 'corp' (via pkce)" in login.stdout()
        assert login.stderr() == ""
    finally:
        login.kill()

    token = Store().load_session("corp")
    assert token is not None and token.refresh_token and token.registration is not None
    stats = remote_corp.stats()
    assert stats["redirect_uris"] == [callback(port)]  # what the emulator's /authorize saw
    assert stats["create_token"]["authorization_code"] == 1
    assert stats["operations"]["RegisterClient"] == 1
    assert not stand_in_log.exists(), "ssocred launched a browser itself"


@pytest.mark.slow
def test_env_port_json_output_keeps_stdout_data(
    sso: RunningEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``SSOCRED_LOGIN_PORT`` alone picks the port; with ``--json`` the instructions go to stderr."""
    port = free_port()
    monkeypatch.setenv("SSOCRED_LOGIN_PORT", str(port))
    login = LoginProcess(tmp_path, ("--remote", "--json"))
    try:
        url = printed_url(login.stderr, login)
        assert redirect_port(url) == port
        assert "Login complete" in approve(url)
        assert login.wait() == 0, login.stderr()
        assert json.loads(login.stdout())["flow"] == "pkce"
        assert f"ssh -L {port}:127.0.0.1:{port} " in login.stderr()
    finally:
        login.kill()
    assert sso.stats()["redirect_uris"] == [callback(port)]
    assert Store().load_session("corp") is not None
    assert not (tmp_path / "browser.log").exists(), "ssocred launched a browser itself"


@pytest.mark.slow
def test_port_flag_wins_over_the_environment_and_the_registration_is_reused(
    logged_in: Token, sso: RunningEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """After a browser login on a random port, --remote on a fixed one registers nothing new (loopback rule)."""
    env_port, flag_port = free_port(), free_port()
    monkeypatch.setenv("SSOCRED_LOGIN_PORT", str(env_port))
    with listening(env_port):  # were the variable used, this login would fail at once
        login = LoginProcess(tmp_path, ("--sso-session", "corp", "--remote", "--port", str(flag_port)))
        try:
            url = login.authorize_url()
            assert redirect_port(url) == flag_port
            approve(url)
            assert login.wait() == 0, login.stderr()
        finally:
            login.kill()
    stats = sso.stats()
    assert stats["redirect_uris"] == [callback(flag_port)]
    assert stats["operations"]["RegisterClient"] == 0 and stats["create_token"]["authorization_code"] == 1
    token = Store().load_session("corp")
    assert token is not None and token.access_token != logged_in.access_token
    assert token.registration == logged_in.registration


@pytest.mark.parametrize("how", ["flag", "env"])
def test_port_in_use_is_one_line_and_changes_nothing(
    logged_in: Token, sso: RunningEmulator, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    args = ["login", "--remote"]
    if how == "flag":
        args += ["--port", str(port)]
    else:
        monkeypatch.setenv("SSOCRED_LOGIN_PORT", str(port))
    with listening(port):
        r = run(*args)
    assert r.returncode == EXIT_SERVICE, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ssocred: "), r.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in lines[0] and "--port N" in lines[0]
    assert r.stdout == ""
    after = Store().load_session("corp")
    assert after is not None and after.access_token == logged_in.access_token
    stats = sso.stats()
    assert stats["operations"]["RegisterClient"] == 0 and stats["operations"]["Authorize"] == 0
    assert stats["redirect_uris"] == []


def test_port_in_use_before_any_login_stores_nothing(sso: RunningEmulator) -> None:
    port = free_port()
    with listening(port):
        r = run("login", "--sso-session", "corp", "--remote", "--port", str(port))
    assert r.returncode == EXIT_SERVICE and "--port" in r.stderr
    assert Store().load_session("corp") is None
    assert Store().stored_sessions() == set()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--remote", "--use-device-code"], "--use-device-code: not allowed with argument --remote"),
        (["--use-device-code", "--remote"], "not allowed with argument --use-device-code"),
        (["--port", "28461"], "--port applies only with --remote"),
        (["--remote", "--port", "0"], "must be a port from 1 to 65535"),
        (["--remote", "--port", "65536"], "must be a port from 1 to 65535"),
        (["--remote", "--port", "http"], "must be a port from 1 to 65535"),
    ],
)
def test_usage_errors(sso: RunningEmulator, args: list[str], expected: str) -> None:
    r = run("login", "--sso-session", "corp", *args)
    assert r.returncode == EXIT_USAGE, r.stderr
    assert len(r.stderr.splitlines()) == 1 and expected in r.stderr, r.stderr
    assert sso.stats()["operations"]["RegisterClient"] == 0
    assert Store().load_session("corp") is None


def test_bad_port_variable_is_a_usage_error(sso: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSOCRED_LOGIN_PORT", "eighty")
    r = run("login", "--remote")
    assert r.returncode == EXIT_USAGE
    assert r.stderr.startswith("ssocred: SSOCRED_LOGIN_PORT='eighty' is not a port") and r.stderr.count("\n") == 1
    assert run("login", "--remote", "--port", "bad").returncode == EXIT_USAGE


def test_legacy_profile_cannot_use_remote(sso: RunningEmulator) -> None:
    write_config(f"[profile old]\nsso_start_url = {START_URL}\nsso_region = us-east-1\n"
                 "sso_account_id = 111122223333\nsso_role_name = R\n")
    r = run("login", "--profile", "old", "--remote", "--port", str(free_port()))
    assert r.returncode == EXIT_CONFIG, r.stderr
    assert "run: ssocred login --profile old --use-device-code" in r.stderr and r.stderr.count("\n") == 1
    assert sso.stats()["operations"]["RegisterClient"] == 0


@pytest.mark.slow
def test_timeout_names_the_tunnel_and_the_device_code_flow(sso: RunningEmulator) -> None:
    port = free_port()
    r = run("login", "--sso-session", "corp", "--remote", "--port", str(port), "--timeout", "1")
    assert r.returncode == EXIT_LOGIN_REQUIRED
    assert f"ssh -L {port}:127.0.0.1:{port}" in r.stderr
    assert "ssocred login --sso-session corp --use-device-code" in r.stderr
    assert Store().load_session("corp") is None


@pytest.mark.slow
def test_ctrl_c_while_waiting_stores_nothing_and_frees_the_port(sso: RunningEmulator, tmp_path: Path) -> None:
    port = free_port()
    login = LoginProcess(tmp_path, ("--remote", "--port", str(port)))
    try:
        login.authorize_url()
        login.proc.send_signal(signal.SIGINT)
        assert login.wait() == EXIT_INTERRUPTED
        assert "interrupted" in login.stderr()
    finally:
        login.kill()
    assert Store().load_session("corp") is None
    with listening(port):  # released
        pass


def test_help_explains_remote() -> None:
    r = run("login", "--help")
    text = " ".join(r.stdout.split())
    for part in ("--remote", "--port N", "ssh -L PORT:127.0.0.1:PORT HOST", "$SSOCRED_LOGIN_PORT",
                 str(remote_login.DEFAULT_PORT)):
        assert part in text, part


def test_port_precedence() -> None:
    env = {"SSOCRED_LOGIN_PORT": " 9123 "}
    assert remote_login.login_port(None, {}) == remote_login.DEFAULT_PORT
    assert remote_login.login_port(None, {"SSOCRED_LOGIN_PORT": ""}) == remote_login.DEFAULT_PORT
    assert remote_login.login_port(None, env) == 9123
    assert remote_login.login_port(8400, env) == 8400


@pytest.mark.parametrize(
    ("env", "hostname", "expected"),
    [
        ({"SSH_CONNECTION": "10.0.0.1 5000 10.0.0.2 22", "USER": "al"}, "box", "al@10.0.0.2"),
        ({"SSH_CONNECTION": "10.0.0.1 5000 10.0.0.2 2222"}, "box", "-p 2222 10.0.0.2"),
        ({"SSH_CONNECTION": "::1 5000 fe80::2 22", "USER": "a b"}, "box", "fe80::2"),
        ({"SSH_CONNECTION": "garbage"}, "build-7.example", "build-7.example"),
        ({}, "localhost", "<host>"),
        ({}, "", "<host>"),
        ({}, "x;rm -rf", "<host>"),
    ],
)
def test_ssh_destination(env: dict[str, str], hostname: str, expected: str) -> None:
    assert remote_login.ssh_destination(env, hostname)[0] == expected


def test_instructions_name_the_port_url_and_fallback() -> None:
    text = remote_login.instructions(8400, "https://oidc.example/authorize?x=1", "ssocred login --use-device-code",
                                     600, {})
    assert "ssh -L 8400:127.0.0.1:8400 " in text
    assert "\n    https://oidc.example/authorize?x=1\n" in text
    assert "ssocred login --use-device-code" in text and "600 s" in text


def test_default_port_is_outside_the_ephemeral_ranges() -> None:
    assert 1024 < remote_login.DEFAULT_PORT < 32768
    ephemeral = Path("/proc/sys/net/ipv4/ip_local_port_range")
    if ephemeral.exists():
        low, high = map(int, ephemeral.read_text().split())
        assert not low <= remote_login.DEFAULT_PORT <= high
