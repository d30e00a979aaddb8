"""``ssocred doctor``: every check in order, and the exit code of the first failure.

Example: ``ssocred doctor --profile dev --json`` prints
``{"checks": [{"id": "config", "status": "pass", ...}, ...], "exit_code": 0, "ok": true, ...}``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ssocred.errors import (
    EXIT_ACCESS_DENIED,
    EXIT_CONFIG,
    EXIT_LOGIN_REQUIRED,
    EXIT_OK,
    EXIT_SERVICE,
    EXIT_STORE,
    SsocredError,
)
from ssocred.usecases.doctor import exported, forwarded, local, network, routing
from ssocred.usecases.doctor.check import FAIL, Check, Context

#: Every check, in the order it runs and is shown, with the exit code its failure stands for.
CHECKS: tuple[tuple[str, Callable[[Context], Check], int], ...] = (
    ("config", local.config, EXIT_CONFIG),
    ("routing", routing.routing, EXIT_CONFIG),
    ("keyring", local.keyring, EXIT_STORE),
    ("cache", local.cache, EXIT_STORE),
    ("token", local.token, EXIT_LOGIN_REQUIRED),
    ("registration", local.registration, EXIT_LOGIN_REQUIRED),
    ("ca_bundle", network.ca_bundle, EXIT_CONFIG),
    ("endpoint", network.endpoint, EXIT_SERVICE),
    ("access", network.access, EXIT_ACCESS_DENIED),
    ("daemon", local.daemon, EXIT_SERVICE),
    ("service", local.service, EXIT_SERVICE),
    ("exports", exported.exports, EXIT_CONFIG),
)
#: The checks that differ on a host a daemon is forwarded to.
FORWARDED: dict[str, Callable[[Context], Check]] = {
    "keyring": forwarded.keyring, "access": forwarded.access, "daemon": forwarded.daemon,
    "service": forwarded.service,
}
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
    from ssocred.socket_protocol import forwarded_socket

    ctx = Context(profile=profile, session=session, forwarded=forwarded_socket())
    for check_id, func, _ in CHECKS:
        chosen = FORWARDED.get(check_id, func) if ctx.forwarded else func
        ctx.results[check_id] = _run_one(check_id, chosen, ctx)
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
