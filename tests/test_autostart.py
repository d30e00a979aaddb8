"""Autostart with real processes: one daemon under a burst, opt-outs, a service manager first, no held pipes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ssocred.adapters import autostart as spawning
from ssocred.adapters import service_manager
from ssocred.adapters.notify import alive
from ssocred.usecases import autostart
from tests.support.cli import ACCOUNT, ROLE, login, process_profile, run, session_config, ssocred_argv, write_config
from tests.support.daemon import RunningDaemon, start_daemon
from tests.support.emulator import RunningEmulator

ARGS = ("process", "--sso-session", "corp", "--account-id", ACCOUNT, "--role-name", ROLE)


def _run_dir() -> Path:
    return Path(os.environ["SSOCRED_RUNTIME_DIR"])


def _daemon_pid() -> int | None:
    try:
        return int((_run_dir() / "daemon.pid").read_text())
    except (OSError, ValueError):
        return None


def _starts_logged() -> list[str]:
    log = Path(os.environ["SSOCRED_LOG_DIR"]) / "daemon.log"
    text = log.read_text() if log.exists() else ""
    return [line for line in text.splitlines() if " INFO started (pid " in line]


def _wait_gone(pid: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.fixture
def on(sso: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningEmulator]:
    """Logged in, autostart switched on explicitly (CI may set CI=true); a daemon it started is killed after."""
    login(sso)
    monkeypatch.setenv("SSOCRED_AUTOSTART", "1")
    monkeypatch.delenv("CI", raising=False)
    yield sso
    pid = _daemon_pid()
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _process_ok() -> dict[str, object]:
    r = run(*ARGS)
    assert r.returncode == 0, r.stderr
    data: dict[str, object] = json.loads(r.stdout)
    return data


@pytest.mark.serial  # a process storm: "exactly once" is proven on a quiet machine
@pytest.mark.slow
def test_a_burst_of_64_cold_callers_starts_one_daemon_that_fetches_once(on: RunningEmulator) -> None:
    on.reset()
    procs = [subprocess.Popen([*ssocred_argv(), *ARGS], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(64)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [(p.returncode, e) for p, (_, e) in zip(procs, outs, strict=True) if p.returncode] == []
    assert len({json.loads(o)["AccessKeyId"] for o, _ in outs}) == 1
    assert on.stats()["operations"]["GetRoleCredentials"] == 1
    pid = _daemon_pid()
    assert pid is not None and alive(pid)
    assert len(_starts_logged()) == 1 and f"started (pid {pid}, autostart" in _starts_logged()[0]
    assert (_run_dir() / spawning.LOCK_FILE).read_text().split()[::2] == ["ready", str(pid)]


@pytest.mark.slow
def test_an_autostarted_daemon_answers_the_next_call_and_status_says_autostarted(on: RunningEmulator) -> None:
    first = _process_ok()
    pid = _daemon_pid()
    assert pid is not None and alive(pid)
    before = on.stats()["operations"]["GetRoleCredentials"]
    assert _process_ok() == first and on.stats()["operations"]["GetRoleCredentials"] == before
    status = run("status")
    assert f"daemon: running (pid {pid}," in status.stdout and "autostarted; exits after 8h" in status.stdout
    daemon = json.loads(run("status", "--json").stdout)["daemon"]
    assert daemon["started_by"] == "autostart" and daemon["idle_exit_seconds"] == 8 * 3600


@pytest.mark.slow
@pytest.mark.parametrize("how", ["variable", "config", "ci"])
def test_opting_out_starts_none(on: RunningEmulator, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    if how == "variable":
        monkeypatch.setenv("SSOCRED_AUTOSTART", "0")
    elif how == "config":
        write_config(session_config("corp") + "[default]\nssocred_autostart = false\n")
    else:
        monkeypatch.delenv("SSOCRED_AUTOSTART")
        monkeypatch.setenv("CI", "true")
    _process_ok()
    assert run("env", *ARGS[1:]).returncode == 0
    assert _daemon_pid() is None and not (_run_dir() / "daemon.sock").exists()
    assert "daemon: not running" in run("status").stdout


@pytest.mark.slow
def test_installed_systemd_units_are_preferred(on: RunningEmulator, monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    from tests.test_service import _verify

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    files = service_manager.rendered("linux")
    for path, content in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    for argv, proc in _verify(sorted(files), tmp_path / "rt"):
        assert proc.returncode == 0, f"{argv}: {proc.stdout}{proc.stderr}"
    assert service_manager.installed()
    assert autostart.decision() == (False, "a service manager starts the daemon (ssocred service install)")
    _process_ok()  # systemd's socket is not active here: answered without a daemon, and none started
    assert _daemon_pid() is None and not (_run_dir() / "daemon.sock").exists()


@pytest.mark.slow
def test_a_killed_autostarted_daemon_is_replaced_on_the_next_call(on: RunningEmulator) -> None:
    _process_ok()
    first = _daemon_pid()
    assert first is not None
    os.kill(first, signal.SIGKILL)
    assert _wait_gone(first)
    _process_ok()
    second = _daemon_pid()
    assert second is not None and second != first and alive(second)
    assert len(_starts_logged()) == 2


@pytest.mark.slow
def test_the_daemon_never_holds_the_callers_pipe_or_terminal(on: RunningEmulator) -> None:
    write_config(session_config("corp") + process_profile("dev", ACCOUNT, ROLE))
    # A reader of the caller's stdout (as botocore is) sees EOF as soon as the caller exits.
    began = time.monotonic()
    proc = subprocess.Popen([*ssocred_argv(), "process", "--profile", "dev"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    callers = {f"pipe:[{os.fstat(f.fileno()).st_ino}]" for f in (proc.stdin, proc.stdout, proc.stderr)}
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert json.loads(out)["AccessKeyId"] and time.monotonic() - began < 60
    pid = _daemon_pid()
    assert pid is not None and alive(pid)
    assert os.getsid(pid) == pid  # a session of its own: no controlling terminal, no signal from the caller's group
    targets = {os.readlink(f"/proc/{pid}/fd/{n}") for n in (0, 1, 2)}
    assert targets == {"/dev/null"}
    # Neither the daemon nor its network worker (the pipes between those two are theirs) holds the caller's.
    for holder in (pid, *_children(pid)):
        held = set()
        for fd in os.listdir(f"/proc/{holder}/fd"):
            with contextlib.suppress(OSError):
                held.add(os.readlink(f"/proc/{holder}/fd/{fd}"))
        assert not held & callers


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
    return found


@pytest.mark.slow
def test_an_idle_autostarted_daemon_exits(on: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSOCRED_AUTOSTART_IDLE", "2s")
    _process_ok()
    pid = _daemon_pid()
    assert pid is not None
    assert _wait_gone(pid, timeout=60)
    assert not (_run_dir() / "daemon.sock").exists() and "daemon: not running" in run("status").stdout


def test_off_by_default_in_ci_and_in_containers_without_a_keyring(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    monkeypatch.setenv("SSOCRED_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("CI", "true")
    assert spawning.off_by_default() == "CI is set"
    monkeypatch.setenv("CI", "false")
    monkeypatch.setenv("container", "podman")
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    assert spawning.off_by_default() == "a container without a keyring"
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/run/user/1000/bus")
    assert spawning.off_by_default() is None
    monkeypatch.delenv("SSOCRED_RUNTIME_DIR")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "missing"))
    if not os.path.isdir(f"/run/user/{os.getuid()}"):
        assert spawning.off_by_default() == "no private runtime dir (XDG_RUNTIME_DIR or /run/user/<uid>)"


def test_the_setting_reads_yes_and_no(monkeypatch: pytest.MonkeyPatch) -> None:
    for value, expected in (("0", False), ("off", False), ("1", True), ("TRUE", True), ("", None), ("x", None)):
        monkeypatch.setenv("SSOCRED_AUTOSTART", value)
        assert spawning.setting() is expected


@pytest.mark.slow
def test_container_starts_a_daemon_and_its_grant_works(on: RunningEmulator) -> None:
    import urllib.request

    write_config(session_config("corp") + process_profile("dev", ACCOUNT, ROLE))
    assert _daemon_pid() is None
    r = run("container", "--profile", "dev", "--json")
    assert r.returncode == 0, r.stderr
    variables = json.loads(r.stdout)
    pid = _daemon_pid()
    assert pid is not None and alive(pid) and len(_starts_logged()) == 1
    request = urllib.request.Request(variables["AWS_CONTAINER_CREDENTIALS_FULL_URI"],
                                     headers={"Authorization": variables["AWS_CONTAINER_AUTHORIZATION_TOKEN"]})
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200 and json.loads(answer.read())["AccountId"] == ACCOUNT


@pytest.mark.slow
def test_an_export_keeps_an_idle_autostarted_daemon_until_it_is_removed(
        on: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSOCRED_AUTOSTART_IDLE", "2s")
    write_config(session_config("corp") + process_profile("dev", ACCOUNT, ROLE))
    r = run("credentials-file", "--profile", "dev", "--as", "dev-keys")
    assert r.returncode == 0, r.stderr
    deadline = time.monotonic() + 30
    while _daemon_pid() is None and time.monotonic() < deadline:  # started in the background
        time.sleep(0.1)
    pid = _daemon_pid()
    assert pid is not None
    assert not _wait_gone(pid, timeout=6)  # three idle periods: the export keeps it
    assert run("credentials-file", "--remove", "--as", "dev-keys").returncode == 0
    assert _wait_gone(pid, timeout=60)


def _fake_systemctl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``systemctl`` on PATH that records its command lines: the units are written, nothing is started."""
    fakebin = tmp_path / "fakebin"
    fakebin.mkdir()
    tool = fakebin / "systemctl"
    tool.write_text('#!/bin/sh\necho "systemctl $*" >> "$FAKE_LOG"\n')
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fakebin}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "calls.log"))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)  # the units go to HOME's
    return tmp_path / "calls.log"


@pytest.mark.slow
def test_service_install_stops_the_autostarted_daemon_and_takes_over(
        on: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fake_systemctl(tmp_path, monkeypatch)
    _process_ok()
    pid = _daemon_pid()
    assert pid is not None and alive(pid)
    dry = run("service", "install", "--platform", "linux", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"kill -TERM {pid}  # the autostarted daemon: the service's takes over" in dry.stdout.splitlines()
    assert alive(pid) and not calls.exists()  # a dry run stops nothing

    done = run("service", "install", "--platform", "linux", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["stopped_autostarted_daemon"] == pid
    assert _wait_gone(pid, timeout=5)  # it had exited before the units were enabled
    assert "systemctl --user enable --now ssocred.socket ssocred.service" in calls.read_text().splitlines()
    assert service_manager.installed_store("linux") == "keyring"
    stopping = [line for line in (Path(os.environ["SSOCRED_LOG_DIR"]) / "daemon.log").read_text().splitlines()
                if " INFO stopped" in line]
    assert stopping  # it ended cleanly, on SIGTERM
    # From now on the service owns the daemon: a caller answers by itself and starts none.
    _process_ok()
    assert _daemon_pid() in (None, pid) and not (_run_dir() / "daemon.sock").exists()


@pytest.mark.slow
def test_service_install_leaves_a_daemon_started_by_hand_and_says_so(
        sso: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, daemons: list[RunningDaemon]) -> None:
    calls = _fake_systemctl(tmp_path, monkeypatch)
    daemon = start_daemon(daemons, tmp_path)
    refused = run("service", "install", "--platform", "linux")
    assert refused.returncode == 5
    assert refused.stderr == (f"ssocred: an ssocred daemon started by hand runs (pid {daemon.proc.pid}); the "
                              f"service's daemon cannot run beside it; stop it (kill {daemon.proc.pid}), then run "
                              "this again\n")
    assert daemon.proc.poll() is None and not calls.exists()
    assert service_manager.installed_store("linux") is None
