"""Role credentials for an account and role: from the keyring cache, or fetched as a singleflight.

Example: ``role_credentials(Store(), "corp", "111122223333", "ReadOnly").access_key_id``
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from ssocred.errors import LoginRequired, StoreError
from ssocred.model.sso import RoleCredentials, Token, credentials_fresh

if TYPE_CHECKING:

    from ssocred.adapters.locks import Lock
    from ssocred.adapters.store import Store

#: ``(session, account id, role name)``.
Role = tuple[str, str, str]

#: What the use cases read the time from: ``time.time``, or a test's own clock (as botocore's ``time_fetcher``).
Clock = Callable[[], float]


def cached(store: Store, session: str, account: str, role: str, *, clock: Clock = time.time) -> RoleCredentials | None:
    """Cached credentials that may still be handed out, without taking any lock.

    Example: ``cached(store, "corp", "111122223333", "Admin", clock=lambda: time.time() + 3600)`` is None
    for credentials that end within the hour.
    """
    creds = store.load_creds(session, account, role)
    if creds is not None and credentials_fresh(creds, clock()):
        return creds
    return None


T = TypeVar("T")

#: A cache hit records its use at most this often (the daemon pre-fetches roles in use).
USE_RECORD_INTERVAL = 600.0


def role_credentials(store: Store, session: str, account: str, role: str, *,
                     clock: Clock = time.time, fetch_with: Callable[[], RoleCredentials] | None = None
                     ) -> RoleCredentials:
    """Fresh credentials for ``role`` in ``account``: the cache, else one fetch across all processes.

    ``fetch_with`` fetches items of other kinds cached under the same key (a chained role's AssumeRole).
    """
    hit = cached(store, session, account, role, clock=clock)
    if hit is None:
        return fetch_with() if fetch_with is not None else fetch(store, session, account, role, clock=clock)
    record_use(store, session, account, role, clock=clock)
    return hit


def record_use(store: Store, session: str, account: str, role: str, *, clock: Clock = time.time) -> None:
    """Note a request for the daemon's pre-fetch, at most every USE_RECORD_INTERVAL; never fails.

    Example: ``record_use(store, "corp", "111122223333", "ReadOnly")`` after a cache hit.
    """
    try:
        entry = store.index().find_creds(session, account, role)
        if entry is None or clock() - entry.last_requested_at > USE_RECORD_INTERVAL:
            store.touch_creds(session, account, role)
    except StoreError:
        pass  # bookkeeping for the pre-fetch must never fail a credential lookup


def fetch(
    store: Store, session: str, account: str, role: str, *, force: bool = False, requested: bool = True,
    clock: Clock = time.time,
) -> RoleCredentials:
    """Fetch under the role lock; a caller that finds fresh credentials after the wait uses them.

    ``requested=False`` (the daemon's pre-fetch) keeps the role's time of last request as it was.
    """
    from ssocred.adapters import locks

    lock = store.role_lock(session, account, role)
    with locks.held(lock, f"role '{role}' in {account}"):
        try:
            if not force:
                hit = cached(store, session, account, role, clock=clock)
                if hit is not None:
                    return hit
            creds = _fetch_locked(store, session, account, role, clock)
            try:
                store.save_creds(session, account, role, creds, requested=requested)
            except StoreError:
                pass  # the cache is a convenience: a keyring that refuses it must not cost the caller its answer
            return creds
        finally:
            _drop_lock_file_if_uncached(store, lock, session, account, role)


def _drop_lock_file_if_uncached(store: Store, lock: Lock, session: str, account: str, role: str) -> None:
    """A role that got no cache entry (access denied, no such role) keeps no lock file either.

    Runs as the very last step under the lock: once the file is unlinked, the next caller makes a new one.
    """
    from ssocred.adapters import locks

    try:
        if store.index().find_creds(session, account, role) is None:
            locks.remove_held(lock)
    except (StoreError, OSError):
        pass  # bookkeeping: the sweep removes what is left


def _fetch_locked(store: Store, session: str, account: str, role: str, clock: Clock) -> RoleCredentials:
    from ssocred.adapters.portal import Portal
    from ssocred.usecases.tokens import fresh_token

    token = fresh_token(store, session, clock=clock)
    portal = Portal(token.region)
    return with_accepted_token(store, session, token, lambda t: portal.role_credentials(t.access_token, account, role),
                               clock=clock)


def with_accepted_token(store: Store, session: str, token: Token, call: Callable[[Token], T], *,
                        clock: Clock = time.time) -> T:
    """``call(token)``; should the portal reject the token, one forced refresh and one more try.

    The one place that turns "token rejected" into "refresh once, retry": the portal no longer
    accepts a token that was revoked, or one a clock skew let expire. A second rejection (or a
    token that cannot be refreshed) is recorded for ``status`` and raised as LoginRequired.
    Example: ``with_accepted_token(store, "corp", token, lambda t: portal.accounts(t.access_token))``
    """
    from ssocred.adapters.portal import TokenRejected
    from ssocred.usecases.tokens import refresh

    try:
        return call(token)
    except TokenRejected:
        pass
    if not token.refreshable(clock()):
        raise _rejected(store, session, token, clock)
    token = refresh(store, session, seen=token, force=True, clock=clock)
    try:
        return call(token)
    except TokenRejected:
        raise _rejected(store, session, token, clock) from None


def _rejected(store: Store, session: str, token: Token, clock: Clock) -> LoginRequired:
    """Record in the index that the portal refused ``token`` (``status`` shows it), and the error to raise."""
    from ssocred.usecases.tokens import login_required

    try:
        store.mark_rejected(session, token, clock())
    except StoreError:
        pass  # the index only explains; the caller's answer is the error below
    return login_required(session, "was rejected by the portal (expired or revoked)")
