"""Refresh of the SSO token: inline, singleflight across real processes, rotation, failures."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time

import pytest

from ssocred.adapters.store import Store
from ssocred.errors import EXIT_LOGIN_REQUIRED, EXIT_SERVICE, LoginRequired, ServiceError
from ssocred.model.sso import Token
from ssocred.usecases.tokens import fresh_token
from tests.support.cli import ACCOUNT, ROLE, login, run
from tests.support.emulator import RunningEmulator

REFRESH_SCRIPT = """
import sys
from ssocred.adapters.store import Store
from ssocred.usecases.tokens import fresh_token
t = fresh_token(Store(), "corp")
print(t.access_token[:6], flush=True)
"""


def _age(seconds_left: float) -> Token:
    """Rewrite the stored token so that it has ``seconds_left`` of an hour-long life left."""
    store = Store()
    token = store.load_session("corp")
    assert token is not None
    now = time.time()
    aged = dataclasses.replace(token, expires_at=now + seconds_left, issued_at=now + seconds_left - 3600)
    store.save_session("corp", aged)
    return aged


@pytest.mark.slow
def test_valid_token_is_not_refreshed(sso: RunningEmulator) -> None:
    token = login(sso)
    assert fresh_token(Store(), "corp").access_token == token.access_token
    assert sso.stats()["operations"]["CreateToken"] == 0


@pytest.mark.slow
def test_expired_token_is_refreshed_and_rotated(sso: RunningEmulator) -> None:
    old = login(sso)
    _age(-5)
    new = fresh_token(Store(), "corp")
    assert new.access_token != old.access_token
    assert new.refresh_token and new.refresh_token != old.refresh_token
    assert new.remaining(time.time()) > 3000
    assert Store().load_session("corp") == new
    # The rotated-out refresh token is dead on the service side.
    assert sso.stats()["create_token"]["refresh_token"] == 1
    # A token that was just refreshed is not refreshed again.
    assert fresh_token(Store(), "corp") == new
    assert sso.stats()["create_token"]["refresh_token"] == 1


@pytest.mark.slow
def test_token_near_expiry_is_refreshed_inline(sso: RunningEmulator) -> None:
    old = login(sso)
    _age(120)
    assert fresh_token(Store(), "corp").access_token != old.access_token


@pytest.mark.serial  # a process storm: singleflight is proven on a quiet machine
@pytest.mark.slow
def test_32_processes_refresh_once(sso: RunningEmulator) -> None:
    login(sso)
    _age(-5)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", REFRESH_SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(32)
    ]
    results = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0] * 32, [e for _, e in results if e][:3]
    assert len({o.strip() for o, _ in results}) == 1  # everyone got the same new token
    stats = sso.stats()
    assert stats["create_token"]["refresh_token"] == 1
    assert stats["refresh_token_reuse_rejected"] == 0


@pytest.mark.slow
def test_revoked_refresh_token_means_login_required(sso: RunningEmulator) -> None:
    login(sso)
    _age(-5)
    sso.revoke()
    with pytest.raises(LoginRequired) as exc:
        fresh_token(Store(), "corp")
    assert exc.value.line() == (
        "SSO session 'corp' can no longer be refreshed (the refresh token was "
        "rejected); run: ssocred login --sso-session corp"
    )
    assert Store().load_session("corp") is not None  # nothing deleted
    r = run("process", "--sso-session", "corp", "--account-id", ACCOUNT, "--role-name", ROLE)
    assert r.returncode == EXIT_LOGIN_REQUIRED
    assert r.stderr.strip().endswith("run: ssocred login --sso-session corp")


@pytest.mark.slow
def test_expired_registration_means_login_required_without_a_call(sso: RunningEmulator) -> None:
    login(sso)
    token = _age(-5)
    assert token.registration is not None
    reg = dataclasses.replace(token.registration, expires_at=time.time() - 1)
    Store().save_session("corp", dataclasses.replace(token, registration=reg))
    with pytest.raises(LoginRequired, match="registration has expired"):
        fresh_token(Store(), "corp")
    assert sso.stats()["operations"]["CreateToken"] == 0


@pytest.mark.slow
def test_transient_failure_keeps_a_usable_token(sso: RunningEmulator) -> None:
    login(sso)
    aged = _age(120)
    sso.control(fail_rate=1.0)
    assert fresh_token(Store(), "corp") == aged
    assert Store().load_session("corp") == aged


@pytest.mark.slow
def test_transient_failure_on_expired_token_is_a_service_error(sso: RunningEmulator) -> None:
    login(sso)
    aged = _age(-5)
    sso.control(fail_rate=1.0)
    with pytest.raises(ServiceError):
        fresh_token(Store(), "corp")
    assert Store().load_session("corp") == aged  # untouched, refresh token not spent
    sso.control(fail_rate=0.0)
    assert fresh_token(Store(), "corp").access_token != aged.access_token


def test_not_logged_in(sso: RunningEmulator) -> None:
    r = run("process", "--sso-session", "corp", "--account-id", ACCOUNT, "--role-name", ROLE)
    assert r.returncode == EXIT_LOGIN_REQUIRED
    assert r.stderr == "ssocred: SSO session 'corp' is not logged in; run: ssocred login --sso-session corp\n"


@pytest.mark.slow
def test_unreachable_during_refresh(sso: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    login(sso)
    _age(-5)
    env = dict(os.environ, AWS_ENDPOINT_URL_SSO_OIDC="http://127.0.0.1:9")
    r = run("process", "--sso-session", "corp", "--account-id", ACCOUNT, "--role-name", ROLE, env=env)
    assert r.returncode == EXIT_SERVICE
    assert "cannot reach" in r.stderr
