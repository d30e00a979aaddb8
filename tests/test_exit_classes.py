"""Bad input and interruptions: the documented exit code, one line on stderr, no traceback, nothing half-done.

Real ``ssocred`` processes against the emulator and a real keyring (issue 14, items 7, 9, 10, 11).
"""

from __future__ import annotations

import json
import os
import pty
import resource
import signal
import subprocess
import time
from pathlib import Path

import keyring
import pytest

from ssocred.adapters import awscli_cache
from ssocred.adapters.store import Store
from ssocred.errors import EXIT_CONFIG, EXIT_INTERRUPTED, EXIT_LOGIN_REQUIRED, EXIT_USAGE
from tests.support.cli import ACCOUNT, ROLE, login, process_profile, run, session_config, ssocred_argv, write_config
from tests.support.emulator import RunningEmulator

TARGET = ("--sso-session", "corp", "--account-id", ACCOUNT, "--role-name", ROLE)


def one_line(r: subprocess.CompletedProcess[str], code: int, text: str) -> None:
    """Exit ``code``, and stderr is exactly one line holding ``text``."""
    assert "Traceback" not in r.stderr
    assert r.returncode == code, r.stderr
    assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith("ssocred"), r.stderr
    assert text in r.stderr, r.stderr


# --- usage errors (items 7 and 11) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (("accounts", "--rate", "inf"), "--rate: must be a number more than 0, not 'inf'"),
        (("accounts", "--rate", "nan"), "--rate: must be a number more than 0"),
        (("accounts", "--rate", "0"), "--rate: must be a number more than 0"),
        (("accounts", "--rate=-5"), "--rate: must be a number more than 0"),
        (("configure", "populate", "--rate", "1e999"), "see: ssocred configure populate --help"),
        (("accounts", "--max-workers", "0"), "--max-workers: must be at least 1"),
        (("login", "--timeout", "inf"), "--timeout: must be a number more than 0"),
        (("emulator", "--port", "99999"), "--port: must be from 0 to 65535, not '99999'"),
        (("emulator", "--port", "-1"), "--port"),
        (("emulator", "--latency-ms", "inf"), "--latency-ms: not a whole number"),
        (("emulator", "--fail-rate", "nan"), "--fail-rate: must be from 0 to 1"),
        (("emulator", "--accounts", "1000000000"), "--accounts: must be from 0 to 100000"),
        (("process", "--sso-session", "corp", "--account-id", ACCOUNT, "--role-name", ""), "--role-name is empty"),
        (("env", "--sso-session", "corp", "--account-id", ACCOUNT, "--role-name", ""), "--role-name is empty"),
        (("process", "--sso-session", "corp", "--account-id", "dev", "--role-name", ROLE),
         "--account-id 'dev' is not an AWS account id; an account id is 12 digits"),
        (("exec", "--sso-session", "corp", "--account-id", "12345678901", "--role-name", ROLE, "--", "true"),
         "--account-id '12345678901' is not an AWS account id"),
        (("configure", "--account-id", "1234", "--no-input"), "is not an AWS account id"),
        (("configure", "--output", "xml"), "invalid choice: 'xml'"),
        (("login", "--profile", ""), "--profile: must not be empty"),
        (("exec", "--", "true"), "ssocred exec needs --sso-session, --account-id, --role-name (or --profile)"),
        (("login", "--use-dev"), "unrecognized arguments: --use-dev; see: ssocred login --help"),
    ],
)
def test_bad_input_is_a_usage_error(home: Path, args: tuple[str, ...], text: str) -> None:
    r = run(*args, timeout=60)
    one_line(r, EXIT_USAGE, text)
    if args[0] == "exec":
        assert "ssocred process" not in r.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("login", "--json", "--json"),
        ("logout", "--sso-session", "a", "--sso-session", "b"),
        ("status", "--json", "--json"),
        ("import", "--profile", "a", "--profile", "b"),
        ("process", *TARGET, "--login", "--login"),
        ("process", *TARGET, "--role-name", "AdministratorAccess"),
        ("env", *TARGET, "--format", "sh", "--format", "json"),
        ("exec", "--profile", "a", "--profile", "b", "--", "true"),
        ("accounts", "--rate", "1", "--rate", "2"),
        ("configure", "--region", "eu-west-1", "--region", "us-east-1"),
        ("configure", "populate", "--prune", "--prune"),
        ("whoami", "--profile", "a", "--profile", "b"),
        ("discover", "--profile", "a", "--profile", "b"),
        ("doctor", "--json", "--json"),
        ("demo", "--keep", "--keep"),
        ("emulator", "--seed", "1", "--seed", "2"),
    ],
)
def test_a_repeated_option_is_a_usage_error_everywhere(home: Path, args: tuple[str, ...]) -> None:
    one_line(run(*args, timeout=60), EXIT_USAGE, "is given more than once")


# --- configuration and login errors (item 11) -----------------------------------------------------


@pytest.mark.parametrize("region", ["us-east", "US-EAST-1", "eu west 1"])
def test_an_invalid_sso_region_is_a_config_error(sso: RunningEmulator, region: str) -> None:
    write_config(session_config("corp").replace("sso_region = us-east-1", f"sso_region = {region}"))
    expected = "sso-session 'corp' in ~/.aws/config has sso_region = "
    one_line(run("login", timeout=60), EXIT_CONFIG, expected)
    r = subprocess.run([*ssocred_argv(), "process", *TARGET, "--login"], capture_output=True, text=True,
                       timeout=60, check=False, start_new_session=True)
    one_line(r, EXIT_CONFIG, expected)
    assert sso.stats()["operations"].get("RegisterClient", 0) == 0


@pytest.mark.slow
def test_discover_with_a_profile_that_is_not_logged_in(sso: RunningEmulator) -> None:
    native = (f"[profile native]\nsso_session = corp\nsso_account_id = {ACCOUNT}\nsso_role_name = {ROLE}\n"
              "region = us-east-1\n")
    write_config(session_config("corp") + process_profile("dev", ACCOUNT, ROLE) + native)
    one_line(run("discover", "--profile", "dev", timeout=60), EXIT_LOGIN_REQUIRED,
             "SSO session 'corp' is not logged in; run: ssocred login")
    one_line(run("discover", "--profile", "native", timeout=60), EXIT_LOGIN_REQUIRED, "is missing or expired")


@pytest.mark.slow
@pytest.mark.parametrize("garbage", [b"\xff\xfe\x00\x81 not text", b"os.system", b"keyring.backends.nope.Keyring",
                                     b"x" * 5000, b""])
def test_a_garbage_remembered_backend_is_ignored(sso: RunningEmulator, garbage: bytes) -> None:
    login()
    remembered = Path(os.environ["SSOCRED_STATE_DIR"]) / "keyring-backend"
    detected = remembered.read_text()
    assert run("process", *TARGET).returncode == 0
    remembered.write_bytes(garbage)
    r = run("process", *TARGET)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert remembered.read_text() == detected  # detection decided, and is remembered again
    remembered.unlink()
    remembered.mkdir()
    r = run("process", *TARGET)
    assert r.returncode == 0 and r.stderr == "", r.stderr


# --- interruptions (item 9) -----------------------------------------------------------------------


def _interrupt_when(proc: subprocess.Popen[str], marker: str) -> str:
    """SIGINT ``proc`` once ``marker`` shows on its stdout; its stderr."""
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    for line in proc.stdout:
        if marker in line or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    return err


def _sso_cache_files(home: Path) -> list[Path]:
    cache = home / ".aws" / "sso" / "cache"
    return sorted(cache.iterdir()) if cache.exists() else []


@pytest.mark.slow
def test_ctrl_c_during_an_export_login_changes_nothing(sso: RunningEmulator, home: Path) -> None:
    env = dict(os.environ, FAKE_BROWSER_IGNORE="1")
    proc = subprocess.Popen([*ssocred_argv(), "login", "--export-aws-cli-cache"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    err = _interrupt_when(proc, "/authorize?")
    assert proc.returncode == EXIT_INTERRUPTED and "nothing was changed" in err and "Traceback" not in err
    assert awscli_cache.exported_sessions() == set() and _sso_cache_files(home) == []
    assert Store().load_session("corp") is None
    # The next plain login must not export: the interrupted one never opted in.
    assert run("login").returncode == 0
    assert awscli_cache.exported_sessions() == set() and _sso_cache_files(home) == []
    r = run("login", "--export-aws-cli-cache", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["exported"] == str(awscli_cache.token_path("corp"))
    assert awscli_cache.exported_sessions() == {"corp"} and _sso_cache_files(home) == [awscli_cache.token_path("corp")]


@pytest.mark.slow
def test_ctrl_c_during_a_process_login_changes_nothing(
    sso: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_BROWSER_IGNORE", "1")
    pid, fd = pty.fork()
    if pid == 0:  # the pty is its /dev/tty, where the login prompts
        out = os.open(tmp_path / "stdout", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(out, 1)
        argv = [*ssocred_argv(), "process", *TARGET, "--login"]
        os.execvpe(argv[0], argv, dict(os.environ))
    seen = b""
    deadline = time.monotonic() + 60
    while b"Approve the login" not in seen and time.monotonic() < deadline:
        try:
            seen += os.read(fd, 4096)
        except OSError:
            break
    os.kill(pid, signal.SIGINT)
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    text = seen.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == EXIT_INTERRUPTED, text
    assert "Traceback" not in text and (tmp_path / "stdout").read_text() == ""
    store = Store()
    assert store.load_session("corp") is None and not store.index().sessions and not store.index().creds
    monkeypatch.delenv("FAKE_BROWSER_IGNORE")
    r = run("login", timeout=60)  # the login lock was released
    assert r.returncode == 0, r.stderr


# --- what logout finds (item 10) ------------------------------------------------------------------


def _without_file_writes() -> None:
    """A child that cannot write a byte to any file: the state dir is as good as full or read-only."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))


def _process_without_file_writes() -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ssocred_argv(), "process", *TARGET], capture_output=True, text=True, timeout=120,
                          check=False, preexec_fn=_without_file_writes)


@pytest.mark.slow
def test_an_unwritable_state_dir_costs_the_cache_not_the_answer(sso: RunningEmulator) -> None:
    login()
    service = os.environ["SSOCRED_KEYRING_SERVICE"]
    item = f"creds:corp:{ACCOUNT}:{ROLE}"
    r = _process_without_file_writes()
    assert (r.returncode, r.stderr) == (0, "") and json.loads(r.stdout)["AccountId"] == ACCOUNT
    # Not indexed, so not stored: an item logout could not find is never written.
    assert keyring.get_password(service, item) is None and Store().index().find_creds("corp", ACCOUNT, ROLE) is None

    # A role already indexed whose item is gone: stored again, though the index cannot take the new expiry.
    assert run("process", *TARGET).returncode == 0
    keyring.delete_password(service, item)
    r = _process_without_file_writes()
    assert (r.returncode, r.stderr) == (0, "")
    assert keyring.get_password(service, item) is not None
    assert run("logout").returncode == 0
    assert keyring.get_password(service, item) is None  # logout found it through the index
