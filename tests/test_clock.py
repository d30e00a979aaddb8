"""Expiry through an injected clock: the use cases read the time from ``clock`` (botocore's ``time_fetcher``).

Credentials and tokens end within the hour in the emulator; moving the clock instead of waiting
shows the cache hit, the refetch near the end, and the token refresh, in-process and at once.
"""

from __future__ import annotations

import time

import pytest

from ssocred.adapters.store import Store
from ssocred.model.sso import BOTOCORE_ADVISORY_WINDOW, credentials_fresh, scaled_window
from ssocred.usecases.credentials import cached, role_credentials
from tests.support.cli import ACCOUNT, ROLE, login
from tests.support.emulator import RunningEmulator

pytestmark = pytest.mark.slow  # logs in through a real `ssocred login` process


def _fetches(emu: RunningEmulator) -> int:
    count: int = emu.stats()["operations"].get("GetRoleCredentials", 0)
    return count


def test_credentials_are_fetched_again_only_when_the_clock_nears_their_end(sso: RunningEmulator) -> None:
    login(sso)
    store = Store()
    first = role_credentials(store, "corp", ACCOUNT, ROLE)
    assert _fetches(sso) == 1
    assert role_credentials(store, "corp", ACCOUNT, ROLE) == first  # a cache hit
    window = scaled_window(BOTOCORE_ADVISORY_WINDOW, first.lifetime)
    just_before = first.expiration - window - 5
    assert role_credentials(store, "corp", ACCOUNT, ROLE, clock=lambda: just_before) == first
    assert _fetches(sso) == 1

    inside = first.expiration - window + 5  # botocore would refresh these now: so does the cache
    assert cached(store, "corp", ACCOUNT, ROLE, clock=lambda: inside) is None
    second = role_credentials(store, "corp", ACCOUNT, ROLE, clock=lambda: inside)
    assert _fetches(sso) == 2
    assert second.access_key_id != first.access_key_id
    assert credentials_fresh(second, time.time())


def test_a_token_past_its_end_on_the_clock_is_refreshed_before_the_fetch(sso: RunningEmulator) -> None:
    token = login(sso)
    store = Store()
    later = token.expires_at + 60  # the token has ended by this clock; the cache is empty
    creds = role_credentials(store, "corp", ACCOUNT, ROLE, clock=lambda: later)
    assert sso.stats()["create_token"]["refresh_token"] == 1
    assert _fetches(sso) == 1
    refreshed = store.load_session("corp")
    assert refreshed is not None and refreshed.access_token != token.access_token
    assert creds.account_id == ACCOUNT
