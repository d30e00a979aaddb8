"""``ssocred daemon``: timing decisions, redaction, and real daemons against the emulator and keyring."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from ssocred.adapters import logs, notify
from ssocred.adapters.store import Store
from ssocred.adapters.store_index import CredsEntry, Index, SessionEntry
from ssocred.daemon.main import read_status
from ssocred.model import schedule
from ssocred.model.sso import (
    BOTOCORE_ADVISORY_WINDOW,
    Registration,
    RoleCredentials,
    Token,
    parse_time,
    scaled_window,
)
from tests.support.cli import ACCOUNT, ROLE, login, run
from tests.support.daemon import READY_TIMEOUT, RunningDaemon, daemon_argv, start_daemon
from tests.support.emulator import REPO_ROOT, RunningEmulator

PROCESS = ("process", "--sso-session", "corp", "--account-id", ACCOUNT, "--role-name", ROLE)

# --- schedule.py: pure timing ---------------------------------------------------------------------


def _token(lifetime: float, age: float, now: float = 1_000_000.0, *, refresh: bool = True,
           registration_left: float = 90 * 86400) -> Token:
    issued = now - age
    reg = Registration("cid", "secret", expires_at=now + registration_left, scopes=("sso:account:access",))
    return Token("at", expires_at=issued + lifetime, issued_at=issued, start_url="https://x/start",
                 region="us-east-1", refresh_token="rt" if refresh else None, registration=reg)


@pytest.mark.parametrize(
    ("lifetime", "expected"),
    [(3600, 1800), (30, 15), (8 * 3600, 4 * 3600), (600, 300), (1, 0.5)],
)
def test_token_refresh_at_is_half_way(lifetime: float, expected: float) -> None:
    assert schedule.token_refresh_at(lifetime, 0.0) == pytest.approx(expected)


@pytest.mark.parametrize("lifetime", [10, 30, 600, 1800, 3600, 4 * 3600, 8 * 3600, 12 * 3600])
def test_token_is_refreshed_before_any_client_window(lifetime: float) -> None:
    at = schedule.token_refresh_at(lifetime, 0.0)
    left = lifetime - at
    # Never inside botocore's 15-minute window (scaled), nor inside 20 minutes (scaled).
    assert left > scaled_window(BOTOCORE_ADVISORY_WINDOW, lifetime)
    assert left >= scaled_window(20 * 60, lifetime)


def test_zero_lifetime_token_is_due_at_once() -> None:
    assert schedule.token_refresh_at(100.0, 100.0) <= 100.0


@pytest.mark.parametrize("lifetime", [30, 3600, 8 * 3600])
def test_just_refreshed_token_waits(lifetime: float) -> None:
    now = 1_000_000.0
    step = schedule.session_step(_token(lifetime, age=0, now=now), now, 3600)
    assert step.action == schedule.WAIT
    assert step.at == pytest.approx(now + lifetime / 2)
    assert step.ends_at is None


def test_token_past_half_life_is_refreshed_now() -> None:
    now = 1_000_000.0
    assert schedule.session_step(_token(3600, age=1801, now=now), now, 3600).action == schedule.REFRESH
    assert schedule.session_step(_token(30, age=16, now=now), now, 3600).action == schedule.REFRESH
    assert schedule.session_step(_token(3600, age=7200, now=now), now, 3600).action == schedule.REFRESH


def test_unrefreshable_token_warns_then_ends() -> None:
    now = 1_000_000.0
    long = schedule.session_step(_token(8 * 3600, age=0, now=now, refresh=False), now, 3600)
    assert long == schedule.SessionStep(schedule.WAIT, now + 7 * 3600, None)
    soon = schedule.session_step(_token(3600, age=1800, now=now, refresh=False), now, 3600)
    assert soon == schedule.SessionStep(schedule.WAIT, now + 1800, now + 1800)
    ended = schedule.session_step(_token(3600, age=3601, now=now, refresh=False), now, 3600)
    assert ended == schedule.SessionStep(schedule.ENDED, None, now - 1)


def test_registration_ending_is_announced() -> None:
    now = 1_000_000.0
    step = schedule.session_step(_token(3600, age=0, now=now, registration_left=600), now, 3600)
    assert step.action == schedule.WAIT and step.ends_at == now + 600
    later = schedule.session_step(_token(3600, age=0, now=now, registration_left=2 * 3600), now, 3600)
    assert later.ends_at is None
    assert later.at == now + 1800  # the refresh comes before the warning
    far = schedule.session_step(_token(8 * 3600, age=0, now=now, registration_left=2 * 3600), now, 3600)
    assert far.at == now + 3600  # the warning comes before the refresh
    gone = schedule.session_step(_token(3600, age=0, now=now, registration_left=-1), now, 3600)
    assert gone.action == schedule.WAIT  # not refreshable: it lives as long as its access token


@pytest.mark.parametrize(("lifetime", "window"), [(3600, 1200), (40, 20), (12 * 3600, 1200), (1800, 900)])
def test_prefetch_window(lifetime: float, window: float) -> None:
    assert schedule.prefetch_window(lifetime) == window
    assert schedule.prefetch_at(1000.0 + lifetime, 1000.0) == 1000.0 + lifetime - window


@pytest.mark.parametrize("lifetime", [1, 10, 40, 60, 900, 3600, 4000, 4800, 8 * 3600, 12 * 3600])
def test_prefetch_lands_before_the_process_window(lifetime: float) -> None:
    """``process`` hands out credentials only outside this window: the pre-fetch must come first."""
    assert schedule.prefetch_window(lifetime) > scaled_window(BOTOCORE_ADVISORY_WINDOW, lifetime)


def test_recently_requested() -> None:
    assert schedule.recently_requested(1000.0, 1000.0 + 8 * 3600, 8)
    assert not schedule.recently_requested(999.0, 1000.0 + 8 * 3600, 8)


def test_retry_delay_bounds() -> None:
    assert schedule.retry_delay(1, 0.5) == 30.0
    assert schedule.retry_delay(2, 0.5) == 60.0
    assert schedule.retry_delay(5, 0.5) == 480.0
    assert schedule.retry_delay(6, 0.5) == 600.0
    assert schedule.retry_delay(1000, 0.5) == 600.0
    for failures in range(1, 40):
        base = min(600.0, 30.0 * 2 ** (failures - 1))
        for draw in (0.0, 0.3, 0.999999):
            assert 0.5 * base <= schedule.retry_delay(failures, draw) < 1.5 * base
    assert schedule.retry_delay(0, 0.5) == 30.0
    assert schedule.retry_delay(3, 0.5, low=1, high=2) == 2.0


def test_clock_jump() -> None:
    assert schedule.clock_jump((0, 100), (30, 130)) == 0.0
    assert schedule.clock_jump((0, 100), (30, 134)) == 0.0
    assert schedule.clock_jump((0, 100), (30, 730)) == 600.0  # a suspend of ten minutes
    assert schedule.clock_jump((0, 100), (30, 70)) == -60.0  # the clock was set back


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("90s", 90), ("30m", 1800), ("1h", 3600),
                                               ("1.5h", 5400), ("2d", 172800), ("0", 0)])
def test_duration(text: str, seconds: float) -> None:
    assert schedule.duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "-1", "1x", "inf", "nan"])
def test_bad_duration(text: str) -> None:
    with pytest.raises(ValueError):
        schedule.duration(text)


# --- logs.py and notify.py ------------------------------------------------------------------------


def test_redactor_removes_registered_and_secret_shaped_values() -> None:
    r = logs.Redactor()
    r.add("plain-secret-value", None, "short")
    key_id = "ASIAABCDEFGHIJKLMNOP"
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
    blob = "aoaQ3kF9xZ2mB7vL1pR8tY4wE6uI0oPaS5dG3hJ2kL9zX8cV7bN6mM1qW2eR3tY4"
    path = "/tmp/pytest-of-root/pytest-12/test_daemon_main0/home/state"
    text = f"a plain-secret-value {jwt} {blob} {key_id} 111111111111 {path} short"
    assert r.redact(text) == f"a [redacted] [redacted] [redacted] {key_id} 111111111111 {path} short"
    assert "[redacted]" in r.redact("f" * 24 + "0123456789abcdef" * 2)  # long hex


def test_redactor_filters_arguments_and_tracebacks() -> None:
    r = logs.Redactor()
    r.add("the-refresh-token-xyz")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "got %s", ("the-refresh-token-xyz",), None)
    try:
        raise RuntimeError("boom the-refresh-token-xyz")
    except RuntimeError:
        record.exc_info = sys.exc_info()
    assert r.filter(record)
    assert record.getMessage() == "got [redacted]"
    assert record.exc_text and "the-refresh-token-xyz" not in record.exc_text and "[redacted]" in record.exc_text
    assert "the-refresh-token-xyz" not in logging.Formatter().format(record)


def test_sd_notify_abstract_address(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"ssocred-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert notify.sd_notify("READY=1")
        assert sock.recv(100) == b"READY=1"
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert not notify.sd_notify("READY=1")


def test_watchdog_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    assert notify.watchdog_interval() == 1.0
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert notify.watchdog_interval() is None  # meant for another process
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert notify.watchdog_interval() == 1.0
    monkeypatch.delenv("WATCHDOG_USEC")
    assert notify.watchdog_interval() is None


def test_desktop_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert notify.desktop_command("t", "b") is None
    assert not notify.desktop("t", "b")
    out = _fake_notify_send(tmp_path, tmp_path / "notified")
    monkeypatch.setattr(sys, "platform", "linux")
    assert notify.desktop("title", "body")
    assert (tmp_path / "notified").read_text().split() == ["--app-name=ssocred", "title", "body"]
    assert out.exists()


@pytest.mark.slow
def test_status_of_a_dead_daemon_is_none(home: Path) -> None:
    assert read_status() is None
    notify.StatusWriter().write({"pid": os.getpid(), "sessions": {}})
    assert read_status() is None  # alive, but nobody holds the pid lock
    lock = notify.acquire_pid_lock()
    try:
        assert read_status() == {"pid": os.getpid(), "sessions": {}}
        with pytest.raises(notify.AlreadyRunning, match=f"pid {os.getpid()}"):
            notify.acquire_pid_lock()
    finally:
        notify.release_pid_lock(lock)
    assert not notify.status_path().exists()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    notify.StatusWriter().write({"pid": int(dead.stdout)})
    assert read_status() is None


def test_log_dir_and_status_file_are_private(home: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen([*daemon_argv(), "--no-socket", "--log-dir"], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        log_file = Path(os.environ["SSOCRED_LOG_DIR"]) / "daemon.log"
        deadline = time.monotonic() + READY_TIMEOUT
        while "started" not in (log_file.read_text() if log_file.exists() else "") or not notify.status_path().exists():
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr and proc.stderr.read()
            time.sleep(0.2)
        assert log_file.stat().st_mode & 0o777 == 0o600
        assert log_file.parent.stat().st_mode & 0o777 == 0o700
        assert notify.status_path().stat().st_mode & 0o777 == 0o600
        status = read_status()
        assert status is not None and status["sessions"] == {} and status["prefetch"] == []
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=45) == 0
    assert read_status() is None


def test_redactor_forgets_the_oldest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs, "MAX_SECRETS", 2)
    r = logs.Redactor()
    r.add("first-secret", "second-secret", "third-secret")
    assert r.redact("first-secret second-secret third-secret") == "first-secret [redacted] [redacted]"


class _FakeScheduler:
    """Records what the daemon asks of APScheduler."""

    def __init__(self) -> None:
        self.jobs: dict[str, float | None] = {}
        self.executors: set[str] = set()
        self.job_executors: dict[str, str] = {}

    def add_job(self, func: object, trigger: str, *, id: str, next_run_time: dt.datetime, executor: str = "default",
                **_: object) -> None:
        assert executor == "default" or executor in self.executors, executor
        self.jobs[id] = next_run_time.timestamp()
        self.job_executors[id] = executor

    def add_executor(self, executor: object, alias: str) -> None:
        assert alias not in self.executors
        self.executors.add(alias)

    def remove_executor(self, alias: str, shutdown: bool = True) -> None:
        self.executors.remove(alias)

    def modify_job(self, job_id: str, next_run_time: dt.datetime | None = None) -> None:
        self.jobs[job_id] = next_run_time.timestamp() if next_run_time else None

    def remove_job(self, job_id: str) -> None:
        del self.jobs[job_id]


class _FakeStore(Store):
    def __init__(self, index: Index) -> None:
        super().__init__("ssocred-fake", 1.0)
        self.ix = index

    def index(self) -> Index:
        return self.ix


def test_scan_follows_the_index_and_clock_jumps(caplog: pytest.LogCaptureFixture) -> None:
    from ssocred.daemon.main import Daemon, Options

    now = time.time()
    session = SessionEntry("corp", now + 3600, True, now + 86400, now)
    used = CredsEntry("corp", ACCOUNT, ROLE, now + 3600, now, now - 3600)
    stale = CredsEntry("corp", ACCOUNT, "Old", now + 3600, now, now - 9 * 3600)
    store = _FakeStore(Index({"corp": session}, (used, stale)))
    d = Daemon(Options(prefetch_hours=8), store=store)
    sched = _FakeScheduler()
    d._sched = sched
    d._scan_once()
    assert set(sched.jobs) == {"session:corp", f"role:corp:{ACCOUNT}:{ROLE}"}
    assert sched.jobs["session:corp"] == pytest.approx(now, abs=5)
    # Each session's jobs run on its own workers: a slow service holds up no other session.
    assert set(sched.job_executors.values()) == sched.executors == {"session:corp"}
    assert sched.jobs[f"role:corp:{ACCOUNT}:{ROLE}"] == pytest.approx(now + 2400, abs=1)
    sched.jobs = dict.fromkeys(sched.jobs, now + 9999)
    d._scan_once()  # nothing changed: nothing replanned
    assert set(sched.jobs.values()) == {now + 9999}
    # The wall clock moved ten minutes more than the monotonic one (a suspend): everything runs now.
    assert d._clock is not None
    d._clock = (d._clock[0], d._clock[1] - 600)
    with caplog.at_level(logging.WARNING, logger="ssocred.daemon"):
        d._scan_once()
    assert "wall clock moved +600 s" in caplog.text
    assert all(at is not None and at < now + 60 for at in sched.jobs.values())
    # Someone else fetched the credentials: the pre-fetch follows their new expiry.
    fetched = dataclasses.replace(used, expiration=now + 7200, updated_at=now + 3600)
    store.ix = Index({"corp": session}, (fetched,))
    d._scan_once()
    assert sched.jobs[f"role:corp:{ACCOUNT}:{ROLE}"] == pytest.approx(now + 6000, abs=1)
    # A logout drops both jobs.
    store.ix = Index()
    d._scan_once()
    assert sched.jobs == {}
    assert sched.executors == set()  # the logged-out session's workers end
    status = d.status()
    assert status["sessions"] == {} and status["prefetch"] == []


# --- the store: pre-fetches are not requests --------------------------------------------------------


def test_save_creds_without_a_request(home: Path, secret_service: object) -> None:
    store = Store()
    now = time.time()
    creds = RoleCredentials("ASIAEXAMPLE", "secret", "token", now + 3600, ACCOUNT, ROLE, now)
    store.save_creds("corp", ACCOUNT, ROLE, creds, requested=False)
    entry = store.index().find_creds("corp", ACCOUNT, ROLE)
    assert entry is not None and entry.last_requested_at == 0.0
    store.save_creds("corp", ACCOUNT, ROLE, creds)
    entry = store.index().find_creds("corp", ACCOUNT, ROLE)
    assert entry is not None and entry.last_requested_at >= now
    first = entry.last_requested_at
    store.save_creds("corp", ACCOUNT, ROLE, dataclasses.replace(creds, expiration=now + 7200), requested=False)
    entry = store.index().find_creds("corp", ACCOUNT, ROLE)
    assert entry is not None and entry.last_requested_at == first and entry.expiration == now + 7200


# --- real daemons ---------------------------------------------------------------------------------


def _fake_notify_send(bindir: Path, out: Path) -> Path:
    bindir.mkdir(parents=True, exist_ok=True)
    script = bindir / "notify-send"
    script.write_text(f"#!/bin/sh\necho \"$@\" >> {out}\n")
    script.chmod(0o755)
    return out


def _expire_token() -> Token:
    store = Store()
    token = store.load_session("corp")
    assert token is not None
    now = time.time()
    aged = dataclasses.replace(token, expires_at=now - 5, issued_at=now - 3605)
    store.save_session("corp", aged)
    return aged


def _collect_secrets(store: Store, into: set[str], stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            token = store.load_session("corp")
            creds = store.load_creds("corp", ACCOUNT, ROLE)
        except Exception:  # a read racing a write: the next round sees it
            token = creds = None
        if token is not None:
            reg = token.registration
            into.update(v for v in (token.access_token, token.refresh_token, reg and reg.client_secret) if v)
        if creds is not None:
            into.update((creds.secret_access_key, creds.session_token))
        stop.wait(1.0)


@pytest.mark.slow
@pytest.mark.long
def test_two_minutes_of_process_calls_never_wait(sso: RunningEmulator, tmp_path: Path,
                                                 daemons: list[RunningDaemon]) -> None:
    sso.control(token_ttl=30, cred_ttl=40)
    login(sso)
    d = start_daemon(daemons, tmp_path, "--scan-interval", "2")
    secrets: set[str] = set()
    stop = threading.Event()
    collector = threading.Thread(target=_collect_secrets, args=(Store(), secrets, stop), daemon=True)
    collector.start()
    calls: list[tuple[float, float, subprocess.CompletedProcess[str]]] = []
    began = time.time()
    while time.time() - began < 120:
        start = time.time()
        calls.append((start - began, 0.0, run(*PROCESS, timeout=90)))
        calls[-1] = (calls[-1][0], time.time(), calls[-1][2])
        time.sleep(max(0.0, start + 1 - time.time()))
    status = read_status()
    assert d.stop() == 0, d.diagnostics()
    stop.set()
    collector.join(10)
    stats = sso.stats()
    log_text = d.log_text()

    failed = [(at, r.returncode, r.stderr) for at, _, r in calls if r.returncode != 0]
    assert not failed, failed
    assert len(calls) >= 20
    keys: list[tuple[float, str]] = []
    for at, done, r in calls:
        out = json.loads(r.stdout)
        left = parse_time(out["Expiration"]) + 1 - done  # + 1: the rendered time drops the fraction
        assert left > scaled_window(BOTOCORE_ADVISORY_WINDOW, 40), (at, left)
        keys.append((at, out["AccessKeyId"]))
    assert stats["create_token"]["refresh_token"] >= 4, stats
    assert stats["refresh_token_reuse_rejected"] == 0, stats
    assert len(re.findall(r"session corp: token refreshed", log_text)) >= 4, log_text
    # Every GetRoleCredentials is either a pre-fetch (logged with its key id) or a call of the
    # loop (whose key id the loop saw first); after the first minute only pre-fetches remain.
    prefetched = set(re.findall(r"pre-fetched (ASIA[A-Z0-9]{16})", log_text))
    assert len(prefetched) >= 3, log_text
    own = {k for _, k in keys} - prefetched
    assert not {k for at, k in keys if at > 60} - prefetched, (keys, prefetched)
    assert stats["operations"]["GetRoleCredentials"] == len(prefetched) + len(own), (stats, own)
    # No secret the store held during the run is in the log, and the refresh lines say nothing secret.
    assert len(secrets) > 10
    leaked = [s[:6] for s in secrets if s in log_text]
    assert not leaked, leaked
    quiet = [line for line in log_text.splitlines() if "token refreshed" in line or "pre-fetched" in line]
    assert quiet and not [line for line in quiet if "[redacted]" in line]  # nothing there even came close
    assert status is not None and status["pid"] == d.proc.pid
    assert status["sessions"]["corp"]["next_refresh"] and status["sessions"]["corp"]["last_error"] is None
    assert [(p["session"], p["account_id"], p["role_name"]) for p in status["prefetch"]] == [("corp", ACCOUNT, ROLE)]
    assert read_status() is None


@pytest.mark.slow
def test_second_daemon_refuses_and_sigterm_stops(sso: RunningEmulator, tmp_path: Path,
                                                 daemons: list[RunningDaemon]) -> None:
    login(sso)
    first = start_daemon(daemons, tmp_path)
    status = read_status()
    assert status is not None and status["pid"] == first.proc.pid
    assert set(status) == {"pid", "started_at", "sessions", "prefetch", "refreshes", "last_commit_ms", "started_by",
                           "idle_exit_seconds", "store"}
    assert status["started_by"] == "by hand" and status["idle_exit_seconds"] is None and status["store"] == "keyring"
    shown = json.loads(run("status", "--json").stdout)["daemon"]
    assert shown["pid"] == first.proc.pid
    assert f"daemon: running (pid {first.proc.pid}" in run("status").stdout
    second = subprocess.run([*daemon_argv(), "--no-socket"], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert second.returncode == 5
    assert second.stderr.count("\n") == 1 and f"pid {first.proc.pid}" in second.stderr, second.stderr
    assert second.stderr.startswith("ssocred: another ssocred daemon is already running")
    began = time.monotonic()
    first.proc.send_signal(signal.SIGTERM)
    first.wait_message("STOPPING=1", timeout=30)
    assert first.proc.wait(timeout=30) == 0, first.diagnostics()
    assert time.monotonic() - began < 30
    assert read_status() is None
    assert json.loads(run("status", "--json").stdout)["daemon"] is None
    assert "daemon: not running" in run("status").stdout
    assert "stopped" in first.log_text()
    assert Store().load_session("corp") is not None


@pytest.mark.slow
def test_sd_notify_ready_watchdog_stopping(sso: RunningEmulator, tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(1.0)
        env = {**os.environ, "NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "2000000", "PYTHONPATH": str(REPO_ROOT)}
        proc = subprocess.Popen([*daemon_argv(), "--no-socket", "--log-file", str(tmp_path / "d.log")], env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            received: list[str] = []
            deadline = time.monotonic() + READY_TIMEOUT
            while received.count("WATCHDOG=1") < 2 or "READY=1" not in received:
                assert time.monotonic() < deadline and proc.poll() is None, received
                try:
                    received.append(sock.recv(4096).decode())
                except TimeoutError:
                    pass
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=45) == 0
            while "STOPPING=1" not in received:
                received.append(sock.recv(4096).decode())
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.mark.slow
def test_login_required_is_reported_once(sso: RunningEmulator, tmp_path: Path, daemons: list[RunningDaemon]) -> None:
    login(sso)
    _expire_token()
    sso.revoke()
    notified = _fake_notify_send(tmp_path / "bin", tmp_path / "notified")
    path = f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"
    d = start_daemon(daemons, tmp_path, "--scan-interval", "1", "--no-socket", env={"PATH": path})
    d.wait_log("cannot be refreshed")
    time.sleep(8)  # several more scans
    lines = [line for line in d.log_text().splitlines() if "cannot be refreshed" in line]
    assert len(lines) == 1, lines
    assert "ssocred login --sso-session corp" in lines[0]
    assert notified.read_text().count("\n") == 1
    assert "cannot be refreshed" in notified.read_text()
    assert Store().load_session("corp") is not None  # nothing wiped
    status = read_status()
    assert status is not None and status["sessions"]["corp"]["last_error"]
    assert d.stop() == 0


@pytest.mark.slow
def test_transient_failures_back_off_and_keep_the_store(sso: RunningEmulator, tmp_path: Path,
                                                        daemons: list[RunningDaemon]) -> None:
    login(sso)
    aged = _expire_token()
    sso.control(fail_rate=1.0)
    notified = _fake_notify_send(tmp_path / "bin", tmp_path / "notified")
    path = f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"
    d = start_daemon(daemons, tmp_path, "--no-socket", "--retry-min", "1", "--retry-max", "2",
                     env={"PATH": path})
    lines = d.wait_log(r"session corp: .*retrying in \d+ s", count=2, timeout=240)
    assert "failure 1" in lines[0] and "failure 2" in lines[1]
    assert Store().load_session("corp") == aged  # untouched: the refresh token was not spent
    sso.control(fail_rate=0.0)
    d.wait_log("session corp: token refreshed", timeout=240)
    assert "cannot be refreshed" not in d.log_text()
    assert not notified.exists()
    assert sso.stats()["refresh_token_reuse_rejected"] == 0
    assert d.stop() == 0
