"""Hostile networks: never a token on stderr, never a traceback, never an unbounded wait.

Every command that talks to AWS meets every kind of broken answer (``tests/support/hostile.py``):
a captive portal's HTML, truncated JSON, ``{}``, a WAF that echoes the request headers (the live
SSO access token among them) as JSON or HTML, a proxy's HTML 403, and a server that never answers.
Each run must end within its time budget with the documented exit code, one line on stderr, no
traceback, and none of the real secret values anywhere in its output.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ssocred.adapters.store import Store
from tests.support.cli import ACCOUNT, ROLE, login, process_profile, run, session_config, write_config
from tests.support.daemon import RunningDaemon, start_daemon
from tests.support.emulator import REPO_ROOT, RunningEmulator
from tests.support.hostile import MODES, HostileServer

pytestmark = pytest.mark.slow  # every test here starts ssocred or its peers as processes

#: The time budget in these tests (``SSOCRED_TIMEOUT``); a run may take this plus start-up.
BUDGET = 3.0
SLACK = 12.0
PROCESS = ("process", "--sso-session", "corp", "--account-id", ACCOUNT, "--role-name", ROLE)


def _secrets() -> dict[str, str]:
    """The real secret values of the stored session, by name."""
    token = Store().load_session("corp")
    assert token is not None and token.refresh_token and token.registration
    return {"access token": token.access_token, "refresh token": token.refresh_token,
            "client secret": token.registration.client_secret}


def _login() -> dict[str, str]:
    login()
    return _secrets()


def _expire() -> None:
    store = Store()
    token = store.load_session("corp")
    assert token is not None
    now = time.time()
    store.save_session("corp", dataclasses.replace(token, expires_at=now - 5, issued_at=now - 3605))


def _env(**endpoints: str) -> dict[str, str]:
    return {**os.environ, "SSOCRED_TIMEOUT": str(BUDGET), **endpoints}


def _problems(r: subprocess.CompletedProcess[str], took: float, secrets: dict[str, str], *, code: int,
              one_line: bool = True) -> list[str]:
    """What is wrong with one run, as short descriptions (no secret in them)."""
    found = []
    if r.returncode != code:
        found.append(f"exit {r.returncode}, not {code}: {r.stderr.strip()[:300]}")
    if one_line and r.stderr.count("\n") != 1:
        found.append(f"{r.stderr.count(chr(10))} stderr lines: {r.stderr[:300]}")
    if "Traceback" in r.stdout + r.stderr:
        found.append("a traceback")
    found += [f"the {name} in the output" for name, value in secrets.items() if value in r.stdout + r.stderr]
    if took > BUDGET + SLACK:
        found.append(f"took {took:.1f} s")
    return found


def _catalogue(command: Callable[[str, HostileServer], tuple[subprocess.CompletedProcess[str], float]],
               secrets: Callable[[], dict[str, str]], *, code: int | dict[str, int] = 5,
               one_line: bool = True, token_sent: bool = True) -> None:
    """Run ``command`` against every hostile mode; fail with the table of what went wrong."""
    failures = {}
    for mode in MODES:
        known = secrets()
        with HostileServer(mode) as server:
            r, took = command(mode, server)
        assert server.requests, f"{mode}: the hostile server was never asked"
        if token_sent and mode.startswith("echo"):  # the echo really carried the token
            assert any(known["access token"] in h for h in server.headers), mode
        wanted = code if isinstance(code, int) else code[mode]
        problems = _problems(r, took, known, code=wanted, one_line=one_line)
        if problems:
            failures[mode] = problems
    assert failures == {}


def _timed(*args: str, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    began = time.monotonic()
    r = run(*args, env=env, timeout=120)
    return r, time.monotonic() - began


def test_process_against_a_hostile_portal(sso: RunningEmulator) -> None:
    _login()
    _catalogue(lambda mode, server: _timed(*PROCESS, env=_env(AWS_ENDPOINT_URL_SSO=server.url)), _secrets)


def test_a_refresh_against_a_hostile_token_endpoint(sso: RunningEmulator) -> None:
    _login()

    def command(mode: str, server: HostileServer) -> tuple[subprocess.CompletedProcess[str], float]:
        _expire()
        return _timed(*PROCESS, env=_env(AWS_ENDPOINT_URL_SSO_OIDC=server.url))

    _catalogue(command, _secrets, token_sent=False)
    assert sso.stats()["refresh_token_reuse_rejected"] == 0
    _expire()  # and the session is intact: the real endpoint refreshes it
    assert run(*PROCESS).returncode == 0


def test_accounts_against_a_hostile_portal(sso: RunningEmulator) -> None:
    _login()
    _catalogue(lambda mode, server: _timed("accounts", "--sso-session", "corp",
                                           env=_env(AWS_ENDPOINT_URL_SSO=server.url)), _secrets)


def test_login_against_a_hostile_token_endpoint(sso: RunningEmulator) -> None:
    _login()  # an earlier login's secrets must not show either
    _catalogue(lambda mode, server: _timed("login", "--sso-session", "corp", "--use-device-code",
                                           env=_env(AWS_ENDPOINT_URL_SSO_OIDC=server.url)),
               _secrets, token_sent=False)
    assert run(*PROCESS).returncode == 0  # the stored session is untouched


def test_logout_reports_a_hostile_portal_and_still_wipes(sso: RunningEmulator) -> None:
    def command(mode: str, server: HostileServer) -> tuple[subprocess.CompletedProcess[str], float]:
        r, took = _timed("logout", "--sso-session", "corp", env=_env(AWS_ENDPOINT_URL_SSO=server.url))
        assert Store().load_session("corp") is None, mode
        return r, took

    logged_in: dict[str, str] = {}

    def secrets() -> dict[str, str]:
        logged_in.clear()
        logged_in.update(_login())
        return dict(logged_in)

    _catalogue(command, secrets, code=0, one_line=False)


def test_whoami_against_a_hostile_portal(sso: RunningEmulator) -> None:
    write_config(session_config("corp") + process_profile("dev", ACCOUNT, ROLE))
    _login()
    _catalogue(lambda mode, server: _timed("whoami", "--profile", "dev", env=_env(AWS_ENDPOINT_URL_SSO=server.url)),
               _secrets)


def test_doctor_against_a_hostile_portal(sso: RunningEmulator) -> None:
    write_config(session_config("corp") + process_profile("dev", ACCOUNT, ROLE))
    _login()
    # Its endpoint probe sends no token, and what follows is skipped once it fails.
    _catalogue(lambda mode, server: _timed("doctor", "--profile", "dev", env=_env(AWS_ENDPOINT_URL_SSO=server.url)),
               _secrets, one_line=False, token_sent=False)


def test_the_daemons_answers_against_a_hostile_portal(sso: RunningEmulator, tmp_path: Path,
                                                      daemons: list[RunningDaemon]) -> None:
    _login()
    logs = []

    def command(mode: str, server: HostileServer) -> tuple[subprocess.CompletedProcess[str], float]:
        env = {"AWS_ENDPOINT_URL_SSO": server.url, "SSOCRED_TIMEOUT": str(BUDGET), "PYTHONPATH": str(REPO_ROOT)}
        d = start_daemon(daemons, tmp_path, "--verbose", env=env)
        try:
            r, took = _timed(*PROCESS, env=dict(os.environ))
            logs.append(d.log_text())
            assert "answered corp" in logs[-1], (mode, d.diagnostics())  # the daemon's answer, not the client's
        finally:
            assert d.stop() == 0
        return r, took

    _catalogue(command, _secrets)
    secrets = _secrets()
    assert not [name for name, value in secrets.items() for text in logs if value in text]
