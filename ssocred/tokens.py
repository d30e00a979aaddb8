"""A valid SSO access token for a session, refreshed as a singleflight across processes.

Example: ``fresh_token(Store(), "corp").access_token``
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ssocred.errors import LoginRequired, ServiceError
from ssocred.model import Token, login_command, needs_inline_refresh, token_usable

if TYPE_CHECKING:
    from filelock import FileLock

    from ssocred.store import Store

#: How long a caller waits for another process that holds the session lock.
LOCK_TIMEOUT = 120.0


def login_required(session: str, what: str) -> LoginRequired:
    """The standard "log in again" error: ``login_required("corp", "has expired")``."""
    return LoginRequired(f"SSO session '{session}' {what}", fix=f"run: {login_command(session)}")


@contextlib.contextmanager
def held(lock: FileLock, what: str) -> Iterator[None]:
    """Hold a cross-process lock, waiting at most LOCK_TIMEOUT: ``with held(store.session_lock(s), s):``."""
    from filelock import Timeout

    try:
        lock.acquire(timeout=LOCK_TIMEOUT)
    except Timeout:
        raise ServiceError(
            f"another ssocred process has held the lock of {what} for {LOCK_TIMEOUT:.0f} s",
            fix="try again; if it persists, look for a hung ssocred process",
        ) from None
    try:
        yield
    finally:
        lock.release()


def stored_token(store: Store, session: str) -> Token:
    """The stored token of ``session``; LoginRequired when there is none."""
    token = store.load_session(session)
    if token is None:
        raise login_required(session, "is not logged in")
    return token


def fresh_token(store: Store, session: str, *, force: bool = False) -> Token:
    """A token that can be sent now, refreshing it first when it is expired or nearly so.

    Refreshes are a singleflight: the session lock is taken, the store re-read, and only a
    caller that still sees a stale token spends the (rotating) refresh token.
    """
    token = stored_token(store, session)
    if not force and not needs_inline_refresh(token, time.time()):
        return token
    return refresh(store, session, seen=token, force=force)


def refresh(store: Store, session: str, *, seen: Token | None = None, force: bool = False) -> Token:
    """Refresh ``session`` under its lock unless another process already did since ``seen``.

    ``force`` refreshes even a token outside the inline window (the daemon's scheduled refresh),
    but still not one that another process replaced after ``seen`` was read.
    """
    with held(store.session_lock(session), f"SSO session '{session}'"):
        token = stored_token(store, session)
        now = time.time()
        replaced = seen is not None and token.access_token != seen.access_token
        if replaced or not (force or needs_inline_refresh(token, now)):
            return token
        return _refresh_locked(store, session, token, now)


def _refresh_locked(store: Store, session: str, token: Token, now: float) -> Token:
    from ssocred.oidc import OAuthError, Oidc, dead_grant

    if not token.refreshable(now):
        if token_usable(token, now):
            return token
        reason = "has expired and cannot be refreshed" + (
            " (its client registration has expired)" if token.refresh_token else ""
        )
        raise login_required(session, reason)
    assert token.registration is not None and token.refresh_token is not None
    try:
        grant = Oidc(token.region).refresh(token.registration, token.refresh_token)
    except OAuthError as exc:
        if token_usable(token, now):
            return token
        if dead_grant(exc.code):
            raise login_required(session, "can no longer be refreshed (the refresh token was rejected)") from None
        raise ServiceError(
            f"refreshing SSO session '{session}' failed ({exc.code})", fix="try again in a minute"
        ) from None
    except ServiceError:
        if token_usable(token, now):
            return token
        raise
    issued = time.time()
    new = Token(
        access_token=grant.access_token,
        expires_at=issued + grant.expires_in,
        issued_at=issued,
        start_url=token.start_url,
        region=token.region,
        refresh_token=grant.refresh_token or token.refresh_token,
        registration=token.registration,
    )
    store.save_session(session, new)
    from ssocred import awscache

    awscache.after_refresh(session, new)
    return new

