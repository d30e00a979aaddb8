"""A refresh spends a rotating refresh token: no signal, kill or keyring failure may lose the session.

Real ``ssocred`` processes against the emulator (which rotates refresh tokens and rejects reuse)
and a real Secret Service. Signals are timed to land while the refresh request is in flight: the
emulator answers slowly and reports the requests it is answering (``/_stats`` ``in_flight_now``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ssocred.adapters.store import Store
from ssocred.model.sso import GRANT_DEVICE, GRANT_REFRESH, Registration, Token
from tests.support.cli import ACCOUNT, REGION, ROLE, START_URL, login, process_here, run, ssocred_argv
from tests.support.daemon import RunningDaemon, start_daemon
from tests.support.emulator import REPO_ROOT, RunningEmulator, device_login

pytestmark = pytest.mark.slow  # every test here starts ssocred or its peers as processes

#: Sessions refreshed at once in each signal round.
PARALLEL = 10
#: Long enough for one caller's refresh request to be caught in flight.
SLOW_MS = 2500
#: Ten callers start over several seconds on a loaded machine: every refresh must still be in flight at the signal.
PARALLEL_SLOW_MS = 8000


def _argv(session: str) -> list[str]:
    return [*ssocred_argv(), "process", "--sso-session", session, "--account-id", ACCOUNT, "--role-name", ROLE]


def _seed_expired_session(emu: RunningEmulator, name: str) -> Token:
    """A real login at the emulator (device flow), stored as session ``name`` with its token expired."""
    reg, grant = device_login(emu.url)
    now = time.time()
    token = Token(
        access_token=grant["accessToken"], expires_at=now - 5, issued_at=now - 3605, start_url=START_URL,
        region=REGION, refresh_token=grant["refreshToken"],
        registration=Registration(reg["clientId"], reg["clientSecret"], float(reg["clientSecretExpiresAt"]),
                                  scopes=("sso:account:access",), grant_types=(GRANT_DEVICE, GRANT_REFRESH)),
    )
    Store().save_session(name, token)
    return token


def _wait_in_flight(emu: RunningEmulator, operation: str, count: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while emu.stats()["in_flight_now"].get(operation, 0) < count:
        assert time.monotonic() < deadline, f"{count} x {operation} never in flight: {emu.stats()}"
        time.sleep(0.01)


def _expire(session: str) -> None:
    """Make the stored token expired, under the session lock (never racing a refresh that stores)."""
    store = Store()
    lock = store.session_lock(session)
    with lock:
        token = store.load_session(session)
        assert token is not None
        now = time.time()
        store.save_session(session, dataclasses.replace(token, expires_at=now - 5, issued_at=now - 3605))


def _drop_cached_credentials(session: str) -> None:
    store = Store()
    with store.role_lock(session, ACCOUNT, ROLE):
        store.delete_creds(session, ACCOUNT, ROLE)


@pytest.fixture
def many_sessions(sso: RunningEmulator) -> Iterator[list[str]]:
    names = [f"chaos{i}" for i in range(PARALLEL)]
    for name in names:
        _seed_expired_session(sso, name)
    sso.reset()
    yield names
    sso.control(latency_ms=0)


def _settle(emu: RunningEmulator) -> None:
    """Wait until the emulator answers nothing: a refresh outlives the caller it was for."""
    deadline = time.monotonic() + 60
    while any(emu.stats()["in_flight_now"].values()):
        assert time.monotonic() < deadline, emu.stats()
        time.sleep(0.05)


def _refreshers(session: str) -> list[int]:
    """Pids of this test's running ``ssocred.process.refresher`` processes for ``session``."""
    service = os.environ["SSOCRED_KEYRING_SERVICE"].encode()  # unique per test: other tests run alongside
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"ssocred.process.refresher" in argv and session.encode() in argv and service in argv:
            found.append(int(entry.name))
    return found


def _caller_with_refresh_in_flight(emu: RunningEmulator, session: str) -> tuple[subprocess.Popen[bytes], int]:
    """``ssocred process`` for ``session``, once its refresher's request is in flight: (caller, refresher pid)."""
    emu.reset()
    emu.control(latency_ms=SLOW_MS)
    proc = subprocess.Popen(_argv(session), stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        _wait_in_flight(emu, "CreateToken", 1)
        (refresher,) = _refreshers(session)
    except BaseException:
        proc.kill()
        raise
    return proc, refresher


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL],
                         ids=["SIGINT", "SIGTERM", "SIGHUP", "SIGKILL"])
def test_a_signal_while_the_refresh_is_in_flight_loses_no_session(
        sso: RunningEmulator, many_sessions: list[str], sig: signal.Signals) -> None:
    sso.control(latency_ms=PARALLEL_SLOW_MS)
    procs = [subprocess.Popen(_argv(name), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True) for name in many_sessions]
    try:
        _wait_in_flight(sso, "CreateToken", PARALLEL)
        for p in procs:
            p.send_signal(sig)
        results = [p.communicate(timeout=90) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    # The callers end as the signal says, at once; the refresh they started goes on without them.
    expected = 130 if sig == signal.SIGINT else -sig
    assert [p.returncode for p in procs] == [expected] * PARALLEL, results
    if sig == signal.SIGINT:
        assert all(err == "ssocred: interrupted\n" for _, err in results), results
    assert all(out == "" for out, _ in results)
    _settle(sso)
    assert sso.stats()["create_token"]["refresh_token"] == PARALLEL
    sso.control(latency_ms=0)
    lost = []
    for name in many_sessions:  # what the next caller of each session gets
        code, _, err = process_here("--sso-session", name, "--account-id", ACCOUNT, "--role-name", ROLE)
        if code != 0:
            lost.append((name, code, err))
    assert lost == []
    stats = sso.stats()
    assert stats["refresh_token_reuse_rejected"] == 0
    assert stats["create_token"]["refresh_token"] == PARALLEL  # the next calls needed no refresh
    assert all(Store().index().sessions[name].refresh_started_at is None for name in many_sessions)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_the_refresh_itself_holds_polite_signals(sso: RunningEmulator, sig: signal.Signals) -> None:
    """Sent to the refreshing process itself, SIGINT, SIGTERM and SIGHUP wait until the token is stored."""
    old = _seed_expired_session(sso, "corp")
    proc, refresher = _caller_with_refresh_in_flight(sso, "corp")
    try:
        os.kill(refresher, sig)
        _settle(sso)
        sso.control(latency_ms=0)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert json.loads(out)["AccountId"] == ACCOUNT
    stored = Store().load_session("corp")
    assert stored is not None and stored.access_token != old.access_token
    assert sso.stats()["create_token"]["refresh_token"] == 1
    assert _refreshers("corp") == []  # it ended as the signal said, once its work was done


def test_a_killed_refresh_is_named_as_such(sso: RunningEmulator) -> None:
    """SIGKILL of the refreshing process itself cannot be held: the next caller and doctor say why."""
    _seed_expired_session(sso, "corp")
    proc, refresher = _caller_with_refresh_in_flight(sso, "corp")
    try:
        os.kill(refresher, signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 5 and err.decode().count("\n") == 1, err  # the caller says the refresh ended
    _settle(sso)  # the service finishes (and rotates) anyway
    sso.control(latency_ms=0)
    status = run("status")
    assert "has not stored its result" in status.stdout, status.stdout
    r = run(*_argv("corp")[len(ssocred_argv()):])
    assert r.returncode == 1
    assert r.stderr == ("ssocred: a refresh of SSO session 'corp' was interrupted (or its new token could not be "
                        "stored) and the service no longer accepts the old refresh token; run: ssocred login "
                        "--sso-session corp\n")
    doctor = json.loads(run("doctor", "--sso-session", "corp", "--json").stdout)
    token_check = next(c for c in doctor["checks"] if c["id"] == "token")
    assert token_check["status"] == "fail" and "interrupted" in token_check["summary"], token_check


def _daemon_env() -> dict[str, str]:
    return {"PYTHONPATH": str(REPO_ROOT)}


@pytest.mark.slow
def test_with_a_daemon_killed_clients_never_spend_a_refresh_token(
        sso: RunningEmulator, tmp_path: Path, daemons: list[RunningDaemon]) -> None:
    login(sso)
    sso.control(latency_ms=150)
    d = start_daemon(daemons, tmp_path, "--scan-interval", "1", env=_daemon_env())
    draw = random.Random(20261130)
    kills = []
    for _ in range(30):
        _expire("corp")
        _drop_cached_credentials("corp")
        proc = subprocess.Popen(_argv("corp"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        wait = draw.uniform(0.0, 0.3)
        time.sleep(wait)
        proc.kill()
        kills.append((round(wait, 3), proc.wait(timeout=30)))
    sso.control(latency_ms=0)
    final = run(*_argv("corp")[len(ssocred_argv()):])
    assert final.returncode == 0, (final.stderr, kills, d.diagnostics())
    from ssocred.daemon.main import read_status

    deadline = time.monotonic() + 30
    while True:  # the status file follows within a scan
        stats, status = sso.stats(), read_status()
        assert status is not None
        if stats["create_token"]["refresh_token"] == status["refreshes"] or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert stats["refresh_token_reuse_rejected"] == 0, stats
    assert stats["create_token"]["refresh_token"] == status["refreshes"], (stats, status)
    assert status["refreshes"] >= 10, (status, kills)  # most rounds really refreshed
    assert sum(1 for _, code in kills if code == -signal.SIGKILL) >= 25, kills  # most clients were really killed
    assert status["last_commit_ms"] is not None


def _flaky_env(tmp_path: Path, control: str) -> dict[str, str]:
    path = tmp_path / "flaky-control"
    path.write_text(control)
    return {**os.environ, "PYTHON_KEYRING_BACKEND": "tests.support.flaky_keyring.FlakyKeyring",
            "FLAKY_KEYRING_CONTROL": str(path), "FLAKY_KEYRING_LOG": str(tmp_path / "flaky.log"),
            "PYTHONPATH": str(REPO_ROOT)}


def test_a_failed_keyring_write_after_the_refresh_is_retried(sso: RunningEmulator, tmp_path: Path) -> None:
    _seed_expired_session(sso, "corp")
    sso.reset()
    env = _flaky_env(tmp_path, "1")  # the keyring refuses the next write only: the new token's
    r = run(*_argv("corp")[len(ssocred_argv()):], env=env)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert json.loads(r.stdout)["AccountId"] == ACCOUNT
    assert (tmp_path / "flaky.log").read_text() == "failed write of session:corp\n"
    stored = Store().load_session("corp")
    assert stored is not None and stored.remaining(time.time()) > 3000  # the retry stored it
    again = run(*_argv("corp")[len(ssocred_argv()):], env=env)
    assert again.returncode == 0, again.stderr
    assert sso.stats()["create_token"]["refresh_token"] == 1
    assert sso.stats()["refresh_token_reuse_rejected"] == 0


def test_a_keyring_that_keeps_refusing_still_answers_the_caller(sso: RunningEmulator, tmp_path: Path) -> None:
    _seed_expired_session(sso, "corp")
    sso.reset()
    env = _flaky_env(tmp_path, "all")
    began = time.monotonic()
    r = run(*_argv("corp")[len(ssocred_argv()):], env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["AccountId"] == ACCOUNT
    assert time.monotonic() - began < 60
    assert r.stderr.startswith("ssocred: warning: the refreshed token of SSO session 'corp' could not be stored")
    assert r.stderr.count("\n") == 1
    doctor = run("doctor", "--sso-session", "corp", "--json")
    token_check = next(c for c in json.loads(doctor.stdout)["checks"] if c["id"] == "token")
    assert token_check["status"] == "fail" and "could not be stored" in token_check["summary"], token_check


@pytest.mark.slow
def test_the_daemon_keeps_a_refused_token_until_the_keyring_recovers(
        sso: RunningEmulator, tmp_path: Path, daemons: list[RunningDaemon]) -> None:
    _seed_expired_session(sso, "corp")
    sso.reset()
    env = _flaky_env(tmp_path, "all")
    control = Path(env["FLAKY_KEYRING_CONTROL"])
    daemon_env = {k: env[k] for k in ("PYTHON_KEYRING_BACKEND", "FLAKY_KEYRING_CONTROL", "FLAKY_KEYRING_LOG",
                                      "PYTHONPATH")}
    d = start_daemon(daemons, tmp_path, "--scan-interval", "1", "--retry-min", "1", "--retry-max", "2",
                     env=daemon_env)
    r = run(*_argv("corp")[len(ssocred_argv()):], env=env)
    assert r.returncode == 0, (r.stderr, d.diagnostics())
    assert json.loads(r.stdout)["AccountId"] == ACCOUNT
    # The daemon holds the refreshed token and says the keyring refused it (its session job logs this
    # after the caller's answer, so wait for the line rather than read the log at once).
    d.wait_log(r"session corp: .*OS keyring", timeout=30)
    stored = Store().load_session("corp")
    assert stored is not None and stored.remaining(time.time()) < 0  # still the old one in the keyring
    control.write_text("")  # the keyring recovers
    d.wait_log("session corp: the refreshed token is stored", timeout=60)
    stored = Store().load_session("corp")
    assert stored is not None and stored.remaining(time.time()) > 3000
    d.stop()
    # Without the daemon, the stored session works: nothing was lost.
    plain = {k: v for k, v in env.items() if k not in ("PYTHON_KEYRING_BACKEND",)}
    _drop_cached_credentials("corp")
    after = run(*_argv("corp")[len(ssocred_argv()):], env=plain)
    assert after.returncode == 0, after.stderr
    stats = sso.stats()
    assert stats["create_token"]["refresh_token"] == 1 and stats["refresh_token_reuse_rejected"] == 0, stats


# --- a stopped or slow daemon -----------------------------------------------------------------------


@pytest.mark.slow
def test_a_stopped_daemon_costs_a_cache_hit_about_a_second(
        sso: RunningEmulator, tmp_path: Path, daemons: list[RunningDaemon]) -> None:
    login()
    d = start_daemon(daemons, tmp_path, "--verbose", env=_daemon_env())
    warm = run(*_argv("corp")[len(ssocred_argv()):])
    assert warm.returncode == 0, warm.stderr
    os.kill(d.proc.pid, signal.SIGSTOP)
    try:
        began = time.monotonic()
        r = run(*_argv("corp")[len(ssocred_argv()):])
        took = time.monotonic() - began
    finally:
        os.kill(d.proc.pid, signal.SIGCONT)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == json.loads(warm.stdout)  # the same cached credentials, read by the client
    assert took < 5.0, took  # generous: the figure itself is measured by bench/stopped_daemon.py
    answered = d.log_text().count("answered corp")
    assert run(*_argv("corp")[len(ssocred_argv()):]).returncode == 0
    d.wait_log("answered corp", count=answered + 1, timeout=30)  # running again, it answers again


@pytest.mark.slow
def test_a_slow_answer_is_waited_for_not_duplicated(
        sso: RunningEmulator, tmp_path: Path, daemons: list[RunningDaemon]) -> None:
    login()
    sso.reset()
    d = start_daemon(daemons, tmp_path, "--verbose", env=_daemon_env())
    sso.control(latency_ms=3000)  # three times the client's patience with a silent daemon
    r = run(*_argv("corp")[len(ssocred_argv()):])
    sso.control(latency_ms=0)
    assert r.returncode == 0, r.stderr
    assert sso.stats()["operations"]["GetRoleCredentials"] == 1  # the client did not fetch a second time
    assert "answered corp 111111111111 ReadOnlyAccess: exit 0" in d.log_text()


# --- the AWS CLI cache export -------------------------------------------------------------------------


def _export_path(home: Path, name: str) -> Path:
    import hashlib

    return home / ".aws" / "sso" / "cache" / f"{hashlib.sha1(name.encode()).hexdigest()}.json"


def test_an_export_nothing_keeps_fresh_is_named(sso: RunningEmulator, home: Path) -> None:
    r = run("login", "--export-aws-cli-cache")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("kept fresh only while the ssocred daemon runs") == 1
    assert "run: ssocred service install" in r.stdout
    doctor = json.loads(run("doctor", "--sso-session", "corp", "--json").stdout)
    check = next(c for c in doctor["checks"] if c["id"] == "daemon")
    assert check["status"] == "warn" and "not kept fresh" in check["summary"], check
    again = run("login")  # the export stays on; it was said once
    assert again.returncode == 0 and "kept fresh" not in again.stdout


@pytest.mark.slow
def test_the_daemon_rewrites_the_export_well_before_it_expires(
        sso: RunningEmulator, home: Path, tmp_path: Path, daemons: list[RunningDaemon]) -> None:
    from ssocred.model.sso import BOTOCORE_ADVISORY_WINDOW, parse_time, scaled_window

    ttl = 16
    sso.control(token_ttl=ttl)
    login(options=("--export-aws-cli-cache",))
    path = _export_path(home, "corp")
    start_daemon(daemons, tmp_path, "--scan-interval", "1", env=_daemon_env())
    ready_at = time.time()
    seen = [json.loads(path.read_text())["expiresAt"]]
    margins = []
    deadline = time.monotonic() + 5 * ttl
    while len(margins) < 2 and time.monotonic() < deadline:
        current = json.loads(path.read_text())["expiresAt"]
        if current != seen[-1]:
            # What the replaced export had left; one that ran out before the daemon was up (a login and a start
            # slower than the token's 16 s on a loaded machine) tells nothing about the daemon.
            if parse_time(seen[-1]) > ready_at:
                margins.append(parse_time(seen[-1]) - time.time())
            seen.append(current)
        time.sleep(0.1)
    assert len(margins) == 2, seen
    # botocore starts refreshing 15 minutes before expiry, the JavaScript SDK gives up at 5
    # (both scaled down for this short token, as every ssocred window is).
    assert min(margins) >= scaled_window(BOTOCORE_ADVISORY_WINDOW, ttl) - 1, margins


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_a_stop_of_the_daemon_and_its_network_worker_mid_refresh_loses_no_session(
        sso: RunningEmulator, tmp_path: Path, daemons: list[RunningDaemon], sig: signal.Signals) -> None:
    """Ctrl-C and ``systemctl stop`` signal every process of the daemon: the refresh in its worker still lands."""
    old = _seed_expired_session(sso, "corp")
    sso.control(latency_ms=2000)
    daemon = start_daemon(daemons, tmp_path)
    _wait_in_flight(sso, "CreateToken", 1)
    worker = int(daemon.wait_log(r"network worker started \(pid \d+\)")[0].split("(pid ")[1].split(")")[0])
    os.kill(worker, sig)
    daemon.proc.send_signal(sig)
    assert daemon.proc.wait(timeout=60) == 0, daemon.diagnostics()
    # Its start-up check and its first job import keyring on two threads at once: neither may see it half-made.
    assert "ImportError" not in daemon.log_text()
    stored = Store().load_session("corp")
    assert stored is not None and stored.access_token != old.access_token
    assert sso.stats()["create_token"]["refresh_token"] == 1
    assert Store().index().sessions["corp"].refresh_started_at is None
    sso.control(latency_ms=0)
    assert run(*_argv("corp")[len(ssocred_argv()):]).returncode == 0
    assert sso.stats()["create_token"]["refresh_token"] == 1


def test_a_network_worker_killed_mid_refresh_is_named_and_the_daemon_goes_on(
        sso: RunningEmulator, tmp_path: Path, daemons: list[RunningDaemon]) -> None:
    """SIGKILL of the daemon's network worker alone (the OOM killer, say) cannot be held: the refresh it carried
    is named as interrupted, as a killed refresher's is, and the daemon itself goes on serving."""
    _seed_expired_session(sso, "corp")
    sso.control(latency_ms=2000)
    daemon = start_daemon(daemons, tmp_path, "--retry-min", "1s", "--retry-max", "2s")
    _wait_in_flight(sso, "CreateToken", 1)
    worker = int(daemon.wait_log(r"network worker started \(pid \d+\)")[0].split("(pid ")[1].split(")")[0])
    os.kill(worker, signal.SIGKILL)
    daemon.wait_log(r"network worker \(pid \d+\) exited")
    _settle(sso)  # the service finishes (and rotates) anyway
    sso.control(latency_ms=0)
    r = run(*_argv("corp")[len(ssocred_argv()):])
    assert r.returncode == 1
    assert r.stderr == ("ssocred: a refresh of SSO session 'corp' was interrupted (or its new token could not be "
                        "stored) and the service no longer accepts the old refresh token; run: ssocred login "
                        "--sso-session corp\n")
    assert daemon.proc.poll() is None  # the daemon lives on, with a new worker for its next call
    login(sso)
    assert run(*_argv("corp")[len(ssocred_argv()):]).returncode == 0
    assert daemon.proc.poll() is None
