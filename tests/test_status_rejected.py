"""status shows a token the service refused, until a new login."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest

from ssocred.adapters.store import Store
from tests.support.cli import ACCOUNT, ROLE, login, run
from tests.support.emulator import RunningEmulator

pytestmark = pytest.mark.slow  # every test here starts ssocred or its peers as processes

PROCESS = ("process", "--sso-session", "corp", "--account-id", ACCOUNT, "--role-name", ROLE)


def corp() -> dict[str, object]:
    r = run("status", "--json")
    assert r.returncode == 0, r.stderr
    entry: dict[str, object] = next(s for s in json.loads(r.stdout)["sessions"] if s["session"] == "corp")
    return entry


def test_a_revoked_token_is_shown_as_rejected_until_a_login(sso: RunningEmulator) -> None:
    login()
    assert corp()["rejected_at"] is None and corp()["refreshable"] is True
    sso.revoke()
    assert run(*PROCESS).returncode == 1
    s = corp()
    assert s["rejected_at"] is not None and s["refreshable"] is False
    text = run("status").stdout
    assert "corp: rejected: the service refused its token at " in text
    assert "run: ssocred login --sso-session corp" in text
    login()
    assert corp()["rejected_at"] is None and corp()["refreshable"] is True


def test_a_refused_refresh_token_is_shown_as_rejected(sso: RunningEmulator) -> None:
    login()
    store = Store()
    token = store.load_session("corp")
    assert token is not None
    now = time.time()
    store.save_session("corp", dataclasses.replace(token, expires_at=now - 5, issued_at=now - 3605))
    sso.revoke()
    assert run(*PROCESS).returncode == 1
    assert corp()["rejected_at"] is not None


def test_doctor_records_what_the_portal_said(sso: RunningEmulator) -> None:
    from tests.support.cli import process_profile, session_config, write_config

    write_config(session_config("corp") + process_profile("dev", ACCOUNT, ROLE))
    login()
    sso.revoke()
    assert run("doctor", "--profile", "dev").returncode == 1
    assert corp()["rejected_at"] is not None
