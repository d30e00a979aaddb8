"""Every reader of ``ssocred process`` arguments agrees, through real processes.

The same arguments go to ``ssocred process`` (without a daemon, and answered by a real
``python -m ssocred.daemon.server``), ``ssocred env``, ``ssocred exec``, and into a profile's
``credential_process`` line read back through ``process --profile`` and ``env --profile``: a role
named ``-Admin`` (written ``--role-name=-Admin``) works on every path, and ``--role-name --login``,
a repeated flag, an empty value or a bad account id is a usage error (exit 2) in one line.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ssocred.errors import EXIT_ACCESS_DENIED, EXIT_USAGE
from tests.support.cli import ACCOUNT, ROLE, session_config, ssocred_argv, ssocred_line, write_config
from tests.support.emulator import REPO_ROOT, RunningEmulator

pytestmark = pytest.mark.slow  # every test here starts ssocred or its peers as processes

DASHED = "-Admin"
#: The test directory, with a role whose name starts with '-' (IAM allows it).
DIRECTORY = {
    "user": "alice@example.com",
    "accounts": [{"accountId": ACCOUNT, "accountName": "Development", "emailAddress": "dev@example.com",
                  "roles": [DASHED, ROLE]}],
}
TARGET = ("--sso-session", "corp", "--account-id", ACCOUNT)
PRINT_KEY = "import os; print(os.environ['AWS_ACCESS_KEY_ID'][:4])"

#: (arguments, exit code, start of the stderr line without "ssocred: ")
CASES: list[tuple[tuple[str, ...], int, str]] = [
    ((*TARGET, f"--role-name={DASHED}"), 0, ""),
    ((*TARGET, "--role-name=-Nope"), EXIT_ACCESS_DENIED, "access denied to role '-Nope'"),
    ((*TARGET, "--role-name", "--login"), EXIT_USAGE, "--role-name needs a value"),
    ((*TARGET, "--role-name", DASHED), EXIT_USAGE, "--role-name needs a value"),
    ((*TARGET, "--role-name", ROLE, f"--role-name={DASHED}"), EXIT_USAGE, "--role-name is given more than once"),
    ((*TARGET, "--role-name", ""), EXIT_USAGE, "--role-name is empty"),
    (("--sso-session", "corp", "--account-id", "11112222333x", "--role-name", ROLE), EXIT_USAGE,
     "--account-id '11112222333x' is not an AWS account id"),
    (("--sso-session", "corp", "--account-id", "1", "--role-name", ROLE), EXIT_USAGE,
     "--account-id '1' is not an AWS account id"),
    (("--profile", "dashed"), 0, ""),
    (("--profile", "login-as-role"), EXIT_USAGE,
     "credential_process in [profile login-as-role] of ~/.aws/config: --role-name needs a value"),
    (("--profile", "repeated"), EXIT_USAGE,
     "credential_process in [profile repeated] of ~/.aws/config: --role-name is given more than once"),
    (("--profile", "dashed", "--profile", "dashed"), EXIT_USAGE, "--profile is given more than once"),
]


def _process(args: tuple[str, ...]) -> list[str]:
    return ["process", *args]


def _env(args: tuple[str, ...]) -> list[str]:
    return ["env", *args, "--format", "json"]


def _exec(args: tuple[str, ...]) -> list[str]:
    return ["exec", *args, "--", sys.executable, "-c", PRINT_KEY]


READERS: dict[str, Callable[[tuple[str, ...]], list[str]]] = {"process": _process, "env": _env, "exec": _exec}


@pytest.fixture
def dashed(sso: RunningEmulator) -> RunningEmulator:
    """Logged in to an emulator that assigns a role named ``-Admin``, with profiles naming it."""
    sso.set_directory(DIRECTORY)
    line = f"{ssocred_line()} process --sso-session corp --account-id {ACCOUNT}"
    write_config(
        session_config("corp")
        + f"[profile dashed]\ncredential_process = {line} --role-name={DASHED}\n"
        + f"[profile login-as-role]\ncredential_process = {line} --role-name --login\n"
        + f"[profile repeated]\ncredential_process = {line} --role-name {ROLE} --role-name={DASHED}\n"
    )
    r = _run("login")
    assert r.returncode == 0, r.stderr
    return sso


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``ssocred ARGS`` with no terminal to prompt on."""
    return subprocess.run([*ssocred_argv(), *args], capture_output=True, text=True, timeout=120, check=False,
                          env=env, start_new_session=True)


def _check(r: subprocess.CompletedProcess[str], code: int, problem: str, reader: str) -> None:
    assert "Traceback" not in r.stderr
    assert r.returncode == code, (reader, r.stderr)
    if code == 0:
        assert r.stderr == ""
        if reader == "process":
            assert json.loads(r.stdout)["AccountId"] == ACCOUNT
        elif reader == "env":
            assert json.loads(r.stdout)["AWS_ACCESS_KEY_ID"].startswith("ASIA")
        else:
            assert r.stdout == "ASIA\n"
        return
    assert r.stdout == ""
    assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith(f"ssocred: {problem}"), (reader, r.stderr)
    if reader != "process":
        assert "ssocred process --help" not in r.stderr or "credential_process in" in r.stderr


@pytest.mark.parametrize("reader", list(READERS))
def test_every_reader_agrees(dashed: RunningEmulator, reader: str) -> None:
    for args, code, problem in CASES:
        _check(_run(*READERS[reader](args)), code, problem, reader)


@pytest.fixture
def server(dashed: RunningEmulator, tmp_path: Path) -> Iterator[Path]:
    """A running ``python -m ssocred.daemon.server --verbose``; yields its log file."""
    log = tmp_path / "server.log"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    with log.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "ssocred.daemon.server", "--verbose"], stdout=subprocess.PIPE,
                                stderr=err, stdin=subprocess.DEVNULL, env=env, text=True)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 60)
    assert ready and json.loads(proc.stdout.readline())["socket"], log.read_text()
    yield log
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    proc.stdout.close()


def test_the_daemon_answers_as_the_client_would(server: Path, tmp_path: Path) -> None:
    alone = dict(os.environ, SSOCRED_RUNTIME_DIR=str(tmp_path / "no-daemon"))
    answered = 0
    for args, code, problem in CASES:
        by_daemon = _run("process", *args)
        by_client = _run("process", *args, env=alone)
        _check(by_daemon, code, problem, "process")
        # Byte for byte the same, whoever answered.
        assert (by_daemon.returncode, by_daemon.stdout, by_daemon.stderr) == (
            by_client.returncode, by_client.stdout, by_client.stderr)
        if code != EXIT_USAGE or (args[0] == "--profile" and len(args) == 2):
            answered += 1  # arguments the grammar accepts go to the daemon; refused ones never reach it
        assert server.read_text().count("answered ") == answered, (args, server.read_text())
    assert f"answered corp {ACCOUNT} {DASHED}: exit 0" in server.read_text()
