"""The console federation endpoint (``/federation``): ``getSigninToken`` and ``login``, as signin.aws.amazon.com.

``getSigninToken`` takes ``Session``, the JSON ``{"sessionId", "sessionKey", "sessionToken"}`` of
role credentials this emulator issued, and answers ``{"SigninToken": ...}`` (valid 15 minutes);
``login`` with that token redirects to ``Destination``. Anything else is a 400 page, as the real
endpoint shows one.
"""

from __future__ import annotations

import hmac
import html
import json
import secrets
from urllib.parse import urlsplit

from ssocred.emulator.state import State
from ssocred.emulator.wire import Request, Response, html_response, json_response, redirect

#: How long a sign-in token may be used (the real endpoint's 15 minutes).
SIGNIN_TOKEN_TTL = 900


def federation(state: State, request: Request) -> Response:
    """``GET /federation?Action=getSigninToken&Session=...`` or ``?Action=login&SigninToken=...&Destination=...``."""
    action = request.arg("Action")
    if action == "getSigninToken":
        return _signin_token(state, request)
    if action == "login":
        return _login(state, request)
    return _refused(f"unknown Action {action!r}")


def _signin_token(state: State, request: Request) -> Response:
    try:
        session = json.loads(request.arg("Session") or "")
        key_id, secret, token = session["sessionId"], session["sessionKey"], session["sessionToken"]
    except (ValueError, KeyError, TypeError):
        return _refused("Session must be the JSON of sessionId, sessionKey and sessionToken")
    with state.lock:
        issued = state.keys.get(str(key_id))
        good = (issued is not None and hmac.compare_digest(issued.secret_access_key, str(secret))
                and hmac.compare_digest(issued.session_token, str(token)))
        if not good or issued is None:
            return _refused("the credentials are not valid")
        if issued.expires_at <= state.now():
            return _refused("the credentials have expired")
        signin = secrets.token_urlsafe(96)
        state.signin_tokens[signin] = (str(key_id), state.now() + SIGNIN_TOKEN_TTL)
    return json_response({"SigninToken": signin})


def _login(state: State, request: Request) -> Response:
    destination = request.arg("Destination") or ""
    if urlsplit(destination).scheme not in ("http", "https"):
        return _refused("Destination must be an http(s) URL")
    with state.lock:
        found = state.signin_tokens.get(request.arg("SigninToken") or "")
        if found is None or found[1] <= state.now():
            return _refused("the sign-in token is not valid or has expired")
    return redirect(destination)


def _refused(why: str) -> Response:
    return html_response(f"<html><body><h1>Bad request</h1><p>{html.escape(why)}</p></body></html>", 400)
