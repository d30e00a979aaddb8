"""One place that turns command results into text or JSON.

Example: ``render(Report("status", {"sessions": []}), as_json=True, out=sys.stdout)``
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO


@dataclass(frozen=True)
class Report:
    """A command's result: a kind (which text layout) and JSON-ready data with no secrets."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)


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


def columns(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns, header first: ``columns(["ID", "NAME"], [["1", "a"]]) == ["ID  NAME", "1   a"]``."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    return ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in (header, *rows)]


def _login(d: dict[str, Any]) -> str:
    how = "reused the login another process just finished" if d.get("reused") else f"via {d['flow']}"
    lines = [f"Logged in to SSO session '{d['session']}' ({how})."]
    lines.append(f"  token expires {d['expires_at']} (in {duration(d['expires_in'])}); "
                 + ("refreshable" if d["refreshable"] else "NOT refreshable: log in again when it expires"))
    lines.append(f"  stored in: {d['store']}")
    if d.get("exported"):
        lines.append(f"  exported for the AWS CLI: {d['exported']}")
    if d.get("export_note"):
        lines.append(f"  note: {d['export_note']}")
    return "\n".join(lines)


def _logout(d: dict[str, Any]) -> str:
    if not d["sessions"]:
        return "Nothing to log out."
    lines = []
    for s in d["sessions"]:
        if not s.get("was_logged_in", True):
            lines.append(f"'{s['session']}' was not logged in; nothing to remove.")
            continue
        note = f" (portal logout failed: {s['portal_error']})" if s.get("portal_error") else ""
        lines.append(f"Logged out of '{s['session']}'{note}.")
    return "\n".join(lines)


def _daemon(daemon: dict[str, Any] | None) -> list[str]:
    if not daemon:
        return ["daemon: not running (start it with: ssocred service install, or ssocred daemon)"]
    lines = [f"daemon: running (pid {daemon['pid']}, since {daemon['started_at']})"]
    if daemon.get("refreshes"):
        commit = daemon.get("last_commit_ms")
        stored = f"; the last one was stored {commit:.0f} ms after the answer" if commit is not None else ""
        lines.append(f"  token refreshes: {daemon['refreshes']}{stored}")
    for name, s in sorted(daemon.get("sessions", {}).items()):
        error = f", last error: {s['last_error']}" if s.get("last_error") else ""
        lines.append(f"  {name}: last refresh {s.get('last_refresh') or 'none yet'}, "
                     f"next {s.get('next_refresh') or 'not scheduled'}{error}")
    prefetch = daemon.get("prefetch", [])
    if prefetch:
        lines.append(f"  pre-fetched roles: {len(prefetch)}")
        lines.extend(f"    {p['session']} {p['account_id']} {p['role_name']}: {_prefetch_state(p)}" for p in prefetch)
    return lines


def _prefetch_state(p: dict[str, Any]) -> str:
    if not p["next_fetch"]:
        return f"not pre-fetched: {p['last_error']}" if p.get("last_error") else "not scheduled"
    error = f", last error: {p['last_error']}" if p.get("last_error") else ""
    return f"next fetch {p['next_fetch']}{error}"


def _status(d: dict[str, Any]) -> str:
    from ssocred.model import login_command

    daemon = _daemon(d.get("daemon"))
    if not d["sessions"]:
        return "\n".join(["No SSO sessions configured or stored; add an [sso-session] to ~/.aws/config, "
                          "then run: ssocred login", *daemon])
    lines = []
    now = time.time()
    for s in d["sessions"]:
        if not s["logged_in"]:
            lines.append(f"{s['session']}: not logged in")
            continue
        left = s["expires_epoch"] - now
        state = "expired" if left <= 0 else f"valid for {duration(left)}"
        refresh = "refreshable" if s["refreshable"] else "not refreshable"
        if s.get("rejected_at"):
            lines.append(f"{s['session']}: rejected: the service refused its token at {s['rejected_at']} (revoked, "
                         f"or logged out elsewhere); run: {login_command(s['session'])}")
        else:
            lines.append(f"{s['session']}: logged in, token {state} (until {s['expires_at']}), {refresh}")
        if s.get("registration_expires_at"):
            lines.append(f"  client registration until {s['registration_expires_at']}")
        if s.get("refresh_started_at"):
            lines.append(f"  a refresh started at {s['refresh_started_at']} has not stored its result (still "
                         "running, or interrupted; ssocred doctor tells which)")
        for c in s["credentials"]:
            c_left = c["expiration_epoch"] - now
            lines.append(f"  {c['account_id']} {c['role_name']}: credentials valid for {duration(c_left)}")
    return "\n".join(lines + daemon)


def _imported(d: dict[str, Any]) -> str:
    return (f"Imported the AWS CLI token for '{d['session']}' (expires {d['expires_at']}, "
            + ("refreshable" if d["refreshable"] else "not refreshable") + f") into {d['store']}.")


_TEXT: dict[str, Callable[[dict[str, Any]], str]] = {
    "login": _login,
    "logout": _logout,
    "status": _status,
    "import": _imported,
}


#: Kinds whose text layout (``text_<kind>``) lives in another module, imported only when rendered.
_LAYOUTS = {
    "doctor": "ssocred.doctor",
    "discover": "ssocred.discover",
    "accounts": "ssocred.setup_text",
    "populate": "ssocred.setup_text",
    "configure": "ssocred.setup_text",
    "whoami": "ssocred.setup_text",
}


def _layout(kind: str) -> Callable[[dict[str, Any]], str] | None:
    import importlib

    module = _LAYOUTS.get(kind)
    if module is None:
        return None
    layout: Callable[[dict[str, Any]], str] = getattr(importlib.import_module(module), "text_" + kind)
    return layout


def render(result: Report, *, as_json: bool, out: TextIO) -> None:
    """Print ``result`` as indented JSON or as its text layout."""
    if as_json:
        print(json.dumps(result.data, indent=2, sort_keys=True), file=out)
        return
    text = _TEXT.get(result.kind) or _layout(result.kind)
    print(text(result.data) if text else json.dumps(result.data, indent=2), file=out)
