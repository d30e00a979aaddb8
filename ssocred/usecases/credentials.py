"""Role credentials for an account and role: from the keyring cache, or fetched as a singleflight.

Example: ``role_credentials(Store(), "corp", "111122223333", "ReadOnly").access_key_id``
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ssocred.errors import LoginRequired, StoreError, UsageError
from ssocred.model.sso import RoleCredentials, Token, credentials_fresh

if TYPE_CHECKING:
    from pathlib import Path

    from ssocred.adapters.locks import Lock
    from ssocred.adapters.store import Store
    from ssocred.process_args import Request

#: ``(session, account id, role name)``.
Role = tuple[str, str, str]

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
    from ssocred.adapters import locks

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
    from ssocred.adapters import locks

    try:
        if store.index().find_creds(session, account, role) is None:
            locks.remove_held(lock)
    except (StoreError, OSError):
        pass  # bookkeeping: the sweep removes what is left


def _fetch_locked(store: Store, session: str, account: str, role: str) -> RoleCredentials:
    from ssocred.adapters.portal import Portal, TokenRejected
    from ssocred.usecases.tokens import fresh_token, refresh

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
    from ssocred.usecases.tokens import login_required

    try:
        store.mark_rejected(session, token, time.time())
    except StoreError:
        pass  # the index only explains; the caller's answer is the error below
    return login_required(session, "was rejected by the portal (expired or revoked)")


def for_request(request: Request, config_path: Path | None = None) -> tuple[Role, bool]:
    """The role ``request`` asks for, and whether a required login may run on the terminal.

    A login may run with ``--login``, or when the profile opts in with ``ssocred_login = true``.
    ``config_path`` replaces ``$AWS_CONFIG_FILE`` (the daemon answers for the client's file).
    Example: ``for_request(Request(profile="dev")) == (("corp", "111122223333", "Developer"), False)``
    """
    named = request.named()
    if named is not None:
        return named, request.login
    if request.profile is None:
        raise UsageError("ssocred process needs --profile, or --sso-session, --account-id and --role-name",
                         fix="see: ssocred process --help")
    from ssocred.adapters import config_file

    cfg = config_file.load(config_path)
    t = cfg.ssocred_target(request.profile)
    opted_in = cfg.profile(request.profile).values.get("ssocred_login", "").lower() in ("true", "yes", "1")
    return (t.session, t.account_id, t.role_name), request.login or opted_in
