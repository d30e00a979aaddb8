"""Every account of an SSO session and the roles in each: ListAccounts, then ListAccountRoles in parallel.

The role lists are fetched with bounded concurrency behind a client-side rate limit; botocore's
standard retries absorb TooManyRequests and 5xx answers. Either every account is listed or the
walk fails: a partial list must never look like "these roles are gone".
Example: ``walk(Store(), "corp", max_workers=16, rate=200).accounts[0].roles``
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ssocred.errors import SsocredError

if TYPE_CHECKING:
    from ssocred.adapters.portal import Account, Portal
    from ssocred.adapters.store import Store


@dataclass(frozen=True)
class AccountRoles:
    """An account and the role names the user can use in it."""

    account: Account
    roles: tuple[str, ...]


@dataclass(frozen=True)
class Walk:
    """The result of a walk: accounts sorted by name then id."""

    session: str
    accounts: tuple[AccountRoles, ...]


class RateLimit:
    """At most ``rate`` calls per second across threads, with bursts of up to ``burst``.

    Example: ``limit = RateLimit(100); limit()`` blocks just long enough to keep the pace.
    """

    def __init__(self, rate: float, burst: int | None = None) -> None:
        if not (rate > 0 and math.isfinite(rate)):  # inf or nan would break the pacing arithmetic
            raise ValueError(f"the rate must be a number more than 0, not {rate!r}")
        self.rate = rate
        self.burst = float(burst if burst is not None else max(1, min(int(rate), 20)))
        self._tokens = self.burst
        self._stamp = time.monotonic()
        self._lock = threading.Lock()
        self.calls = 0

    def __call__(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    self.calls += 1
                    return
                delay = (1 - self._tokens) / self.rate
            time.sleep(delay)


def walk(store: Store, session: str, *, max_workers: int = 16, rate: float = 200.0,
         label: str = "Listing roles") -> Walk:
    """List every account and its roles for ``session``; a progress bar is drawn on a terminal."""
    from ssocred.adapters.portal import Portal, TokenRejected
    from ssocred.usecases.credentials import with_accepted_token
    from ssocred.usecases.tokens import fresh_token, login_required

    token = fresh_token(store, session)
    limit = RateLimit(rate)
    portal = Portal(token.region, pace=limit, pool=max_workers)
    accounts, token = with_accepted_token(store, session, token, lambda t: (portal.accounts(t.access_token), t))
    try:
        listed = _roles(portal, token.access_token, accounts, max_workers, label)
    except TokenRejected:
        raise login_required(session, "was rejected by the portal (expired or revoked)") from None
    ordered = sorted(listed, key=lambda a: (a.account.name.lower(), a.account.account_id))
    return Walk(session, tuple(ordered))


def _roles(portal: Portal, token: str, accounts: list[Account], workers: int, label: str) -> list[AccountRoles]:
    from ssocred.usecases.parallel import ItemFailed, each

    try:
        roles = each(lambda a: portal.roles(token, a.account_id), accounts, label, workers=workers)
    except ItemFailed as failed:
        raise _failure(failed.error, failed.item, len(accounts)) from None  # type: ignore[arg-type]
    return [AccountRoles(a, tuple(sorted(r))) for a, r in zip(accounts, roles, strict=True)]


def _failure(exc: BaseException, account: Account, total: int) -> BaseException:
    from ssocred.adapters.portal import TokenRejected
    from ssocred.errors import ServiceError

    if isinstance(exc, SsocredError):
        return type(exc)(f"listing the roles of account {account.account_id} failed: {exc.message}", fix=exc.fix)
    if isinstance(exc, TokenRejected) or not isinstance(exc, Exception):
        return exc
    return ServiceError(
        f"listing the roles of account {account.account_id} (of {total}) failed: {type(exc).__name__}",
        fix="try again; lower --rate or --max-workers if the portal keeps throttling",
    )
