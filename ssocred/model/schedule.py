"""When the daemon acts: token refreshes, credential pre-fetches, retries, clock jumps (pure).

No I/O here. Times are POSIX seconds; every window scales with the lifetime of what it guards,
so a 30-second test token is handled like a 1-hour one.
Example: ``token_refresh_at(expires_at=t0 + 3600, issued_at=t0) == t0 + 1800``
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ssocred.model.sso import Token, scaled_window

#: Refresh an SSO token at the latest this long before it expires (scaled for short lifetimes).
TOKEN_REFRESH_WINDOW = 20 * 60
#: Fetch role credentials again this long before they expire, at most ...
PREFETCH_WINDOW = 20 * 60
#: ... and at most this share of their lifetime. It is above ``model.WINDOW_SHARE`` on purpose:
#: ``scaled_window`` caps botocore's 15 minutes at a quarter of short lifetimes, and the
#: pre-fetch must land before that window opens, not together with it.
PREFETCH_SHARE = 0.5
#: Retries after a transient failure: from this delay ...
RETRY_MIN = 30.0
#: ... doubling up to this one, each drawn within ±50 %.
RETRY_MAX = 600.0
#: A difference between wall-clock and monotonic progress above this is a clock jump.
CLOCK_JUMP_TOLERANCE = 5.0

#: ``SessionStep.action`` values.
REFRESH = "refresh"
WAIT = "wait"
ENDED = "ended"


def token_refresh_at(expires_at: float, issued_at: float) -> float:
    """When the daemon refreshes a token: half-way through its life, or 20 minutes (scaled) before its end.

    Example: ``token_refresh_at(3600.0, 0.0) == 1800.0``; a 30-second token: ``token_refresh_at(30, 0) == 15``.
    """
    lifetime = max(0.0, expires_at - issued_at)
    halfway = issued_at + lifetime / 2
    return min(halfway, expires_at - scaled_window(TOKEN_REFRESH_WINDOW, lifetime))


def prefetch_window(lifetime: float) -> float:
    """How long before their expiry credentials are fetched again: ``prefetch_window(3600) == 1200``.

    Always wider than ``scaled_window(BOTOCORE_ADVISORY_WINDOW, lifetime)``: ``prefetch_window(40) == 20``.
    """
    if lifetime <= 0:
        return PREFETCH_WINDOW
    return min(PREFETCH_WINDOW, lifetime * PREFETCH_SHARE)


def prefetch_at(expiration: float, issued_at: float) -> float:
    """When credentials are fetched again: ``prefetch_at(3600.0, 0.0) == 2400.0``."""
    return expiration - prefetch_window(max(0.0, expiration - issued_at))


def recently_requested(last_requested_at: float, now: float, hours: float) -> bool:
    """Whether credentials were asked for within ``hours``: ``recently_requested(0, 3600, 8) is True``."""
    return last_requested_at >= now - hours * 3600


def retry_delay(failures: int, draw: float, low: float = RETRY_MIN, high: float = RETRY_MAX) -> float:
    """Seconds before retry number ``failures`` (1, 2, ...), ``draw`` uniform in [0, 1).

    Doubles from ``low`` up to ``high``, then spreads by ±50 % so that many daemons coming back
    from one outage do not retry in step. Example: ``retry_delay(1, 0.5) == 30.0``.
    """
    base = min(high, low * 2.0 ** min(max(failures, 1) - 1, 32))
    return base * (0.5 + min(max(draw, 0.0), 1.0))


def clock_jump(previous: tuple[float, float], current: tuple[float, float],
               tolerance: float = CLOCK_JUMP_TOLERANCE) -> float:
    """How far the wall clock moved beyond elapsed monotonic time, 0.0 within ``tolerance``.

    Pairs are ``(time.monotonic(), time.time())``. A suspend/resume or a clock change shows as
    a jump: ``clock_jump((0, 100), (30, 730)) == 600.0``; ``clock_jump((0, 100), (30, 130)) == 0.0``.
    """
    jump = (current[1] - previous[1]) - (current[0] - previous[0])
    return jump if abs(jump) > tolerance else 0.0


@dataclass(frozen=True)
class SessionStep:
    """What to do with a session now: ``SessionStep(WAIT, at=1800.0, ends_at=None)``.

    ``action`` is REFRESH (now), WAIT (until ``at``) or ENDED (it needs a new login; ``at`` is
    None: nothing to do until the session changes). ``ends_at`` is set when the session ends for
    good within the warning period (no refresh can extend it past then).
    """

    action: str
    at: float | None
    ends_at: float | None = None


def session_step(token: Token, now: float, warn_before: float) -> SessionStep:
    """The next step for a session's token: ``session_step(token, time.time(), 3600).action``.

    Example: a just-refreshed 1-hour token waits half an hour: ``SessionStep(WAIT, now + 1800)``.
    """
    if token.refreshable(now):
        assert token.registration is not None
        end = token.registration.expires_at
        ends_at = end if end - now <= warn_before else None
        due = token_refresh_at(token.expires_at, token.issued_at)
        if due <= now:
            return SessionStep(REFRESH, now, ends_at)
        warn_at = end - warn_before
        return SessionStep(WAIT, warn_at if now < warn_at < due else due, ends_at)
    # No refresh possible: the session lasts as long as this access token.
    if token.expires_at <= now:
        return SessionStep(ENDED, None, token.expires_at)
    warn_at = token.expires_at - warn_before
    if warn_at <= now:
        return SessionStep(WAIT, token.expires_at, token.expires_at)
    return SessionStep(WAIT, warn_at, None)


def duration(text: str) -> float:
    """Seconds from ``90``, ``90s``, ``30m``, ``1h`` or ``2d``: ``duration("1h") == 3600.0``.

    Raises ValueError for anything else, negative values included.
    """
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    raw = text.strip().lower()
    scale = units.get(raw[-1:], 0)
    value = float(raw[:-1] if scale else raw) * (scale or 1)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"not a duration: {text!r}")
    return value
