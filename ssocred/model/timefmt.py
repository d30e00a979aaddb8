"""Time spans as people read them, and the ISO 8601 durations AWS writes (pure).

Example: ``duration(3725) == "1h 2m"``, ``human_duration("PT8H") == "8h"``
"""

from __future__ import annotations

import re

_ISO_DURATION = re.compile(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?")


def duration(seconds: float) -> str:
    """Human duration: ``duration(3725) == "1h 2m"``, ``duration(-5) == "expired"``."""
    if seconds <= 0:
        return "expired"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def duration_seconds(iso: str) -> int | None:
    """Seconds of an ISO 8601 duration: ``duration_seconds("PT1H30M") == 5400``; None if unreadable."""
    match = _ISO_DURATION.fullmatch(iso.strip())
    if not match or iso.strip() in ("P", "PT") or iso.strip().endswith("T"):
        return None
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def human_duration(iso: str) -> str:
    """``human_duration("PT8H") == "8h"``, ``human_duration("PT1H30M") == "1h 30m"``; "" if unreadable."""
    total = duration_seconds(iso)
    if total is None:
        return ""
    parts = [(total // 86400, "d"), (total % 86400 // 3600, "h"), (total % 3600 // 60, "m"), (total % 60, "s")]
    return " ".join(f"{n}{unit}" for n, unit in parts if n) or "0s"
