"""Control endpoints for tests and demos: counters, run-time settings, mass revocation."""

from __future__ import annotations

import json

from ssocred.emulator import pages
from ssocred.emulator.errors import ApiError
from ssocred.emulator.state import State, Stats
from ssocred.emulator.wire import Request, Response, html_response, json_response


def stats(state: State, request: Request) -> Response:
    """``GET /_stats``: request and token counters, and the requests being answered now (``in_flight_now``)."""
    with state.lock:
        return json_response({**state.stats.snapshot(), "in_flight_now": dict(state.in_flight_now)})


def reset(state: State, request: Request) -> Response:
    """``POST /_reset``: zero every counter."""
    with state.lock:
        state.stats = Stats()
    return json_response({})


def control(state: State, request: Request) -> Response:
    """``POST /_control``: change settings from a JSON object; answers with all settings."""
    try:
        changes = json.loads(request.body or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ApiError("InvalidRequestException", 400, "body must be a JSON object") from None
    if not isinstance(changes, dict):
        raise ApiError("InvalidRequestException", 400, "body must be a JSON object")
    with state.lock:
        try:
            state.settings.update(changes)
        except (TypeError, ValueError) as exc:
            raise ApiError("InvalidRequestException", 400, str(exc)) from None
        return json_response(state.settings.as_dict())


def directory(state: State, request: Request) -> Response:
    """``POST /_directory``: replace the accounts and roles (same JSON as ``--directory``); answers the count.

    Tokens stay valid, so a client sees assignments appear and vanish as an admin changes them.
    """
    from ssocred.emulator.directory import parse, seeded

    try:
        data = json.loads(request.body or b"{}")
        replaced = parse(data, seeded("file", 0))
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise ApiError("InvalidRequestException", 400, str(exc)) from None
    with state.lock:
        state.directory = replaced
    return json_response({"accounts": len(replaced.accounts)})


def revoke(state: State, request: Request) -> Response:
    """``POST /_revoke``: revoke every access and refresh token."""
    with state.lock:
        state.revoke_all()
    return json_response({})


def index(state: State, request: Request) -> Response:
    """``GET /``: a landing page for people who open the URL in a browser."""
    return html_response(pages.index(request.base_url))
