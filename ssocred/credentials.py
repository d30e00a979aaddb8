"""Role credentials for an account and role: from the keyring cache, or fetched as a singleflight.

Example: ``role_credentials(Store(), "corp", "111122223333", "ReadOnly").access_key_id``
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ssocred.errors import LoginRequired, StoreError
from ssocred.model import RoleCredentials, Token, credentials_fresh

if TYPE_CHECKING:
    from ssocred.locks import Lock
    from ssocred.store import Store

def cached(store: Store, session: str, account: str, role: str) -> RoleCredentials | None:
    """Cached credentials that may still be handed out, without taking any lock."""
    creds = store.load_creds(session, account, role)
    if creds is not None and credentials_fresh(creds, time.time()):
        return creds
    return None


#: A cache hit records its use at most this often (the daemon pre-fetches roles in use).
USE_RECORD_INTERVAL = 600.0


def role_credentials(store: Store, session: str, account: str, role: str) -> RoleCredentials:
    """Fresh credentials for ``role`` in ``account``: the cache, else one fetch across all processes."""
    hit = cached(store, session, account, role)
    if hit is None:
        return fetch(store, session, account, role)
    record_use(store, session, account, role)
    return hit


def record_use(store: Store, session: str, account: str, role: str) -> None:
    """Note a request for the daemon's pre-fetch, at most every USE_RECORD_INTERVAL; never fails.

    Example: ``record_use(store, "corp", "111122223333", "ReadOnly")`` after a cache hit.
    """
    try:
        entry = store.index().find_creds(session, account, role)
        if entry is None or time.time() - entry.last_requested_at > USE_RECORD_INTERVAL:
            store.touch_creds(session, account, role)
    except StoreError:
        pass  # bookkeeping for the pre-fetch must never fail a credential lookup


def fetch(
    store: Store, session: str, account: str, role: str, *, force: bool = False, requested: bool = True
) -> RoleCredentials:
    """Fetch under the role lock; a caller that finds fresh credentials after the wait uses them.

    ``requested=False`` (the daemon's pre-fetch) keeps the role's time of last request as it was.
    """
    from ssocred import locks

    lock = store.role_lock(session, account, role)
    with locks.held(lock, f"role '{role}' in {account}"):
        try:
            if not force:
                hit = cached(store, session, account, role)
                if hit is not None:
                    return hit
            creds = _fetch_locked(store, session, account, role)
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
    from ssocred import locks

    try:
        if store.index().find_creds(session, account, role) is None:
            locks.remove_held(lock)
    except (StoreError, OSError):
        pass  # bookkeeping: the sweep removes what is left


def _fetch_locked(store: Store, session: str, account: str, role: str) -> RoleCredentials:
    from ssocred.portal import Portal, TokenRejected
    from ssocred.tokens import fresh_token, refresh

    token = fresh_token(store, session)
    portal = Portal(token.region)
    try:
        return portal.role_credentials(token.access_token, account, role)
    except TokenRejected:
        pass
    # The portal no longer accepts the token (revoked, or a clock skew): one forced refresh, then give up.
    if not token.refreshable(time.time()):
        raise _rejected(store, session, token)
    token = refresh(store, session, seen=token, force=True)
    try:
        return portal.role_credentials(token.access_token, account, role)
    except TokenRejected:
        raise _rejected(store, session, token) from None


def _rejected(store: Store, session: str, token: Token) -> LoginRequired:
    """Record in the index that the portal refused ``token`` (``status`` shows it), and the error to raise."""
    from ssocred.tokens import login_required

    try:
        store.mark_rejected(session, token, time.time())
    except StoreError:
        pass  # the index only explains; the caller's answer is the error below
    return login_required(session, "was rejected by the portal (expired or revoked)")
