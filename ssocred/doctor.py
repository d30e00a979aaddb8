"""``ssocred doctor``: every check in order, the exit code of the first failure, and the text layout.

Example: ``ssocred doctor --profile dev --json`` prints
``{"checks": [{"id": "config", "status": "pass", ...}, ...], "exit_code": 0, "ok": true, ...}``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from ssocred import checks, checks_portal
from ssocred.checks import FAIL, SKIP, Check, Context
from ssocred.configparse import clean
from ssocred.errors import (
    EXIT_ACCESS_DENIED,
    EXIT_CONFIG,
    EXIT_LOGIN_REQUIRED,
    EXIT_OK,
    EXIT_SERVICE,
    EXIT_STORE,
    SsocredError,
)
from ssocred.render import Report, render

#: Every check, in the order it runs and is shown, with the exit code its failure stands for.
CHECKS: tuple[tuple[str, Callable[[Context], Check], int], ...] = (
    ("config", checks.config, EXIT_CONFIG),
    ("routing", checks.routing, EXIT_CONFIG),
    ("keyring", checks.keyring, EXIT_STORE),
    ("cache", checks.cache, EXIT_STORE),
    ("token", checks.token, EXIT_LOGIN_REQUIRED),
    ("registration", checks.registration, EXIT_LOGIN_REQUIRED),
    ("ca_bundle", checks_portal.ca_bundle, EXIT_CONFIG),
    ("endpoint", checks_portal.endpoint, EXIT_SERVICE),
    ("access", checks_portal.access, EXIT_ACCESS_DENIED),
    ("daemon", checks.daemon, EXIT_SERVICE),
    ("service", checks.service, EXIT_SERVICE),
)
#: The check ids in order: ``CHECK_IDS[0] == "config"``.
CHECK_IDS = tuple(check_id for check_id, _, _ in CHECKS)
#: The exit code a failure of each check usually stands for: ``EXIT_CODES["access"] == EXIT_ACCESS_DENIED``.
EXIT_CODES = {check_id: code for check_id, _, code in CHECKS}
_WIDTH = max(len(check_id) for check_id in CHECK_IDS) + 1


def _run_one(check_id: str, func: Callable[[Context], Check], ctx: Context) -> Check:
    try:
        result = func(ctx)
    except SsocredError as exc:
        result = Check(check_id, FAIL, exc.message, exc.fix, exit_code=exc.exit_code)
    except Exception as exc:  # one broken check must not hide the others; the type alone carries no secret
        result = Check(check_id, FAIL, f"the check itself failed ({type(exc).__name__})", None)
    assert result.id == check_id
    return result


def diagnose(profile: str | None, session: str | None) -> dict[str, Any]:
    """Run every check for a profile or session: ``diagnose("dev", None)["checks"][0]["id"] == "config"``.

    Without either, ``$AWS_PROFILE`` or the only ``[sso-session]`` is checked, as other commands do.
    """
    if not session and not profile:
        profile = os.environ.get("AWS_PROFILE") or None
    ctx = Context(profile=profile, session=session)
    for check_id, func, _ in CHECKS:
        ctx.results[check_id] = _run_one(check_id, func, ctx)
    results = [ctx.results[check_id] for check_id in CHECK_IDS]
    failed = [r for r in results if r.status == FAIL]
    code = (failed[0].exit_code or EXIT_CODES[failed[0].id]) if failed else EXIT_OK
    return {
        "profile": profile,
        "session": ctx.key or session,
        "ok": not failed,
        "exit_code": code,
        "checks": [r.as_json() for r in results],
    }


def command(args: argparse.Namespace) -> int:
    """``ssocred doctor [--profile P | --sso-session S] [--json]``: prints the checks, returns the exit code."""
    data = diagnose(args.profile, args.sso_session)
    render(Report("doctor", data), as_json=args.json, out=sys.stdout)
    code: int = data["exit_code"]
    return code


def text_doctor(data: dict[str, Any]) -> str:
    """The text layout: ``PASS  token        logged in; token valid for 58m 3s``, then ``      fix: ...``."""
    parts = [f"profile '{clean(data['profile'])}'"] if data.get("profile") else []
    if data.get("session"):
        session = clean(data["session"])
        # A legacy profile's session is keyed by its start URL, not by a section name.
        parts.append(f"start URL {session}" if "://" in session else f"sso-session '{session}'")
    lines = ["ssocred doctor: " + (", ".join(parts) or "no profile or sso-session selected")]
    for check in data["checks"]:
        lines.append(f"{check['status'].upper():<6}{check['id']:<{_WIDTH}}{check['summary']}")
        if check.get("fix"):
            lines.append(f"{'':<6}fix: {check['fix']}")
    statuses = [c["status"] for c in data["checks"]]
    warned, skipped = statuses.count("warn"), statuses.count(SKIP)
    notes = ", ".join(f"{n} {word}" for n, word in ((warned, "warned"), (skipped, "skipped")) if n)
    if data["ok"]:
        lines.append("no check failed" + (f" ({notes})" if notes else ""))
    else:
        failed = statuses.count(FAIL)
        lines.append(f"{failed} check{'s' if failed != 1 else ''} failed; exit code {data['exit_code']}")
    return "\n".join(lines)
