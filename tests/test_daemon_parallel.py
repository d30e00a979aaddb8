"""The daemon works for its sessions in parallel: a slow service delays only the session behind it.

Two SSO sessions in two regions, each region answered by its own emulator (``tests.support.regions``:
botocore's endpoint rules from ``AWS_DATA_PATH``), one of them slow. The order of events is read from
the emulators' counters of requests in flight and from the daemon's log, never from wall-clock bounds.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ssocred.adapters import aws
from ssocred.adapters.store import Store
from tests.support.cli import DIRECTORY, START_URL, run, write_config
from tests.support.daemon import RunningDaemon, start_daemon
from tests.support.emulator import RunningEmulator, fork_emulator
from tests.support.regions import region_endpoints
from tests.support.secret_service import PrivateSecretService

FAST, SLOW = "fast", "slow"
REGIONS = {FAST: "us-east-1", SLOW: "eu-west-1"}
#: Below ssocred's 15 s per attempt, so the slow refresh is one request held this long, not a retry.
SLOW_MS = 12_000


@pytest.fixture
def two_services(home: Path, secret_service: PrivateSecretService, tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, RunningEmulator]]:
    """Sessions ``fast`` and ``slow``, each logged in at its own emulator (by its region)."""
    secret_service.ensure_running()
    emus = {name: fork_emulator("--directory", DIRECTORY) for name in REGIONS}
    try:
        for key, value in region_endpoints(tmp_path / "botocore-data",
                                           {REGIONS[n]: e.url for n, e in emus.items()}).items():
            monkeypatch.setenv(key, value)
        write_config("".join(f"[sso-session {name}]\nsso_start_url = {START_URL}\nsso_region = {region}\n"
                             "sso_registration_scopes = sso:account:access\n" for name, region in REGIONS.items()))
        for name in REGIONS:
            r = run("login", "--sso-session", name, "--use-device-code")
            assert r.returncode == 0, r.stderr
        for emu in emus.values():
            emu.reset()
        yield emus
    finally:
        for emu in emus.values():
            emu.stop()


def _make_due(store: Store, session: str) -> None:
    """Age the stored token past half its life, so that the daemon refreshes it (as time passing would)."""
    token = store.load_session(session)
    assert token is not None
    now = time.time()
    store.save_session(session, dataclasses.replace(token, issued_at=now - 3000, expires_at=now + 600))


def _wait(condition: object, what: str, d: RunningDaemon, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what}; {d.diagnostics()}"
        time.sleep(0.1)


def _refreshing(emu: RunningEmulator) -> int:
    """CreateToken requests the emulator is answering at this moment."""
    return int(emu.stats().get("in_flight_now", {}).get("CreateToken", 0))


@pytest.mark.slow
def test_a_slow_session_delays_no_other(two_services: dict[str, RunningEmulator], tmp_path: Path,
                                        daemons: list[RunningDaemon]) -> None:
    fast, slow = two_services[FAST], two_services[SLOW]
    store = Store()
    slow.control(latency_ms=SLOW_MS)
    _make_due(store, SLOW)
    d = start_daemon(daemons, tmp_path, "--scan-interval", "1")
    _wait(lambda: _refreshing(slow) == 1, "the slow session's refresh never reached its service", d)
    # Only now does the fast session fall due: its refresh starts while the slow one is held.
    _make_due(store, FAST)
    d.wait_log(rf"session {FAST}: token refreshed")
    held = _refreshing(slow)
    log_then = d.log_text()
    assert held == 1, f"the slow refresh ended before the fast one was done; {d.diagnostics()}"
    assert f"session {SLOW}: token refreshed" not in log_then, log_then
    assert fast.stats()["create_token"]["refresh_token"] == 1
    # The slow one completes too, with the token it was refreshing (no refresh token spent twice).
    d.wait_log(rf"session {SLOW}: token refreshed")
    assert d.stop() == 0, d.diagnostics()
    for emu in (fast, slow):
        stats = emu.stats()
        assert stats["create_token"]["refresh_token"] == 1, stats
        assert stats["refresh_token_reuse_rejected"] == 0, stats


def test_clients_are_built_once_and_shared_between_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.delenv("AWS_ENDPOINT_URL_SSO", raising=False)
    built: list[object] = []
    barrier = threading.Barrier(8)

    def build() -> None:
        barrier.wait()
        built.append(aws.client("sso", "ap-southeast-2"))

    threads = [threading.Thread(target=build) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(built) == 8 and all(c is built[0] for c in built)
    assert aws.client("sso-oidc", "ap-southeast-2") is not built[0]
    assert aws.client("sso", "eu-west-3") is not built[0]
    # Another endpoint is another client; the same settings again are the same one.
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSO", "http://127.0.0.1:9")
    moved = aws.client("sso", "ap-southeast-2")
    assert moved is not built[0] and moved is aws.client("sso", "ap-southeast-2")
    assert aws.client("sso", "ap-southeast-2", attempts=1) is not moved
