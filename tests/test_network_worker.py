"""The daemon's network worker: AWS calls made in a child process, so the daemon never loads botocore.

Real parts: the worker is ``python -m ssocred.daemon.worker`` started by ``network_client``, the
calls go to the emulator over HTTP through real botocore clients in that process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ssocred.adapters import network_client
from ssocred.adapters.oidc import OAuthError, Oidc
from ssocred.adapters.portal import Portal, TokenRejected
from ssocred.errors import AccessDenied, ServiceError
from ssocred.model.sso import Registration
from tests.support.cli import ACCOUNT, DIRECTORY, OTHER_ACCOUNT, REGION, ROLE
from tests.support.emulator import RunningEmulator, device_login, start_emulator

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def emu() -> Iterator[RunningEmulator]:
    running = start_emulator("--directory", DIRECTORY)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def delegated(emu: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningEmulator]:
    """This process's adapters call through a worker (as the daemon's do), pointed at the emulator."""
    emu.control(latency_ms=0)
    emu.reset()
    for name, value in emu.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(network_client.IDLE_VARIABLE, "30")
    monkeypatch.setattr(network_client, "_active", True)
    try:
        yield emu
    finally:
        network_client.stop()


def _token(emu: RunningEmulator) -> tuple[Registration, dict[str, object]]:
    reg, token = device_login(emu.url)
    registration = Registration(client_id=reg["clientId"], client_secret=reg["clientSecret"],
                                expires_at=float(reg["clientSecretExpiresAt"]), scopes=("sso:account:access",))
    return registration, token


def _gone(pid: int, timeout: float = 20) -> bool:
    """Whether process ``pid`` has exited and been reaped (by the client's reader thread) within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists():
            return True
        time.sleep(0.05)
    return False


def test_the_callers_process_never_loads_botocore(emu: RunningEmulator) -> None:
    """A fresh process that delegates fetches role credentials and refreshes a token with no botocore of its own."""
    reg, token = _token(emu)
    script = f"""
import json, sys
from ssocred.adapters import network_client
from ssocred.adapters.oidc import Oidc
from ssocred.adapters.portal import Portal
from ssocred.model.sso import Registration
network_client.delegate()
creds = Portal({REGION!r}).role_credentials({token["accessToken"]!r}, {ACCOUNT!r}, {ROLE!r})
reg = Registration(client_id={reg.client_id!r}, client_secret={reg.client_secret!r}, expires_at={reg.expires_at!r},
                   scopes=("sso:account:access",))
grant = Oidc({REGION!r}).refresh(reg, {token["refreshToken"]!r})
worker = network_client.current_pid()
network_client.stop()
print(json.dumps({{"key": creds.access_key_id, "fresh": bool(grant.access_token), "worker": worker,
                  "loaded": sorted(m for m in sys.modules if m.split(".")[0] in ("botocore", "boto3", "urllib3"))}}))
"""
    env = {**os.environ, **emu.env(), "PYTHONPATH": str(ROOT)}
    before = emu.stats()["operations"].get("GetRoleCredentials", 0)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["key"].startswith("ASIA") and answer["fresh"]
    assert isinstance(answer["worker"], int) and answer["worker"] != 0
    assert answer["loaded"] == []
    assert emu.stats()["operations"]["GetRoleCredentials"] == before + 1


def test_errors_come_back_as_the_adapters_raise_them(delegated: RunningEmulator) -> None:
    reg, token = _token(delegated)
    portal = Portal(REGION)
    with pytest.raises(TokenRejected):
        portal.role_credentials("not-a-token", ACCOUNT, ROLE)
    with pytest.raises(AccessDenied) as denied:
        portal.role_credentials(str(token["accessToken"]), OTHER_ACCOUNT, "NoSuchRole")
    assert denied.value.fix and "ssocred accounts" in denied.value.fix
    with pytest.raises(OAuthError) as oauth:
        Oidc(REGION).refresh(reg, "not-a-refresh-token")
    assert oauth.value.code == "InvalidGrantException"
    assert {a.account_id for a in portal.accounts(str(token["accessToken"]))} >= {ACCOUNT}


def test_an_idle_worker_exits_and_the_next_call_starts_another(delegated: RunningEmulator,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(network_client.IDLE_VARIABLE, "0.5")
    _, token = _token(delegated)
    portal = Portal(REGION)
    portal.role_credentials(str(token["accessToken"]), ACCOUNT, ROLE)
    first = network_client.current_pid()
    assert first is not None
    assert _gone(first)
    assert network_client.current_pid() is None
    assert portal.role_credentials(str(token["accessToken"]), ACCOUNT, ROLE).access_key_id.startswith("ASIA")
    second = network_client.current_pid()
    assert second is not None and second != first


class _HeldFetch:
    """A GetRoleCredentials in a thread of its own, held by the emulator's latency until it is let go."""

    def __init__(self, emu: RunningEmulator, latency_ms: int) -> None:
        _, token = _token(emu)
        self.access_token = str(token["accessToken"])
        self.portal = Portal(REGION)
        self.portal.accounts(self.access_token)  # the worker is up
        worker = network_client.current_pid()
        assert worker is not None
        self.worker = worker
        self.result: list[object] = []
        self.failure: list[BaseException] = []
        emu.control(latency_ms=latency_ms)
        self.thread = threading.Thread(target=self._fetch)
        self.thread.start()
        _wait_for_operation(emu, "GetRoleCredentials")

    def _fetch(self) -> None:
        try:
            self.result.append(self.portal.role_credentials(self.access_token, ACCOUNT, ROLE))
        except BaseException as exc:
            self.failure.append(exc)

    def fetched(self) -> bool:
        """Whether the held call has answered with role credentials."""
        return bool(self.result) and getattr(self.result[0], "access_key_id", "").startswith("ASIA")


def test_calls_in_flight_share_one_worker_and_a_slow_one_holds_up_no_other(delegated: RunningEmulator) -> None:
    slow = _HeldFetch(delegated, 3000)
    delegated.control(latency_ms=0)
    assert slow.portal.accounts(slow.access_token)
    assert not slow.result and not slow.failure  # answered while the slow call is still held
    slow.thread.join(30)
    assert slow.fetched()
    assert network_client.current_pid() == slow.worker


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_a_signal_to_the_worker_does_not_cut_a_call_short(delegated: RunningEmulator, sig: signal.Signals) -> None:
    """Ctrl-C and service stops reach the whole process group: the daemon decides, the call in flight completes."""
    held = _HeldFetch(delegated, 1500)
    os.kill(held.worker, sig)
    held.thread.join(30)
    assert held.fetched(), held.failure
    assert network_client.current_pid() == held.worker


def test_a_worker_killed_mid_call_fails_that_call_and_the_next_starts_a_new_one(delegated: RunningEmulator) -> None:
    held = _HeldFetch(delegated, 3000)
    os.kill(held.worker, signal.SIGKILL)
    held.thread.join(30)
    assert held.failure and isinstance(held.failure[0], ServiceError)
    assert "network worker exited" in held.failure[0].message
    delegated.control(latency_ms=0)
    assert held.portal.role_credentials(held.access_token, ACCOUNT, ROLE).access_key_id.startswith("ASIA")
    assert network_client.current_pid() not in (None, held.worker)


def _wait_for_operation(emu: RunningEmulator, op: str, timeout: float = 20) -> None:
    """Until the emulator has received ``op`` (it counts a request when it arrives, before any latency)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if emu.stats()["operations"].get(op, 0) > 0:
            return
        time.sleep(0.02)
    raise AssertionError(f"the emulator never saw {op}")


def test_a_call_that_meets_a_worker_just_told_to_exit_goes_to_a_new_one(delegated: RunningEmulator,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The idle timer may close the worker between the moment a call picks it and the moment it sends."""
    _, token = _token(delegated)
    portal = Portal(REGION)
    portal.accounts(str(token["accessToken"]))
    old = network_client._worker
    assert old is not None
    old._retire()  # what the idle timer does
    seen = []
    real_accepting = network_client.Worker.accepting

    def stale_accepting(self: network_client.Worker) -> bool:
        seen.append(self.pid)
        return True if self is old and len(seen) == 1 else real_accepting(self)  # checked before the close

    monkeypatch.setattr(network_client.Worker, "accepting", stale_accepting)
    assert portal.role_credentials(str(token["accessToken"]), ACCOUNT, ROLE).access_key_id.startswith("ASIA")
    assert seen[0] == old.pid and network_client.current_pid() not in (None, old.pid)


def test_what_this_process_knows_as_secret_is_removed_from_the_workers_errors(delegated: RunningEmulator) -> None:
    """The worker cleans server text by shape only; the daemon's registered secrets go on the way back."""
    from ssocred.adapters.logs import REDACTOR

    _, token = _token(delegated)
    REDACTOR.add("RoleNamedLikeASecret")
    with pytest.raises(AccessDenied) as denied:
        Portal(REGION).role_credentials(str(token["accessToken"]), ACCOUNT, "RoleNamedLikeASecret")
    assert "RoleNamedLikeASecret" not in str(denied.value) and "[redacted]" in denied.value.message
