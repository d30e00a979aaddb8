"""Browser-facing sign-in: ``/authorize`` (PKCE authorization code) and ``/device`` (device approval)."""

from __future__ import annotations

import re
import secrets
from urllib.parse import quote, urlencode, urlsplit

from ssocred.emulator import pages
from ssocred.emulator.oidc import redirect_allowed
from ssocred.emulator.state import AuthCode, AuthRequest, DeviceGrant, State
from ssocred.emulator.wire import Request, Response, html_response, redirect

_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
_PENDING_TTL = 600


def authorize(state: State, request: Request) -> Response:
    """``GET /authorize``: validate, then redirect with a code (or show Allow/Deny in manual mode)."""
    params = {name: values[0] for name, values in request.query.items()}
    with state.lock:
        auth = _validate(state, params)
        if isinstance(auth, str):
            return html_response(pages.message("Sign-in request rejected", auth), 400)
        if not state.settings.manual_approve:
            return _decide(state, auth, allow=not state.settings.deny_authorize)
        pending_id = secrets.token_urlsafe(24)
        state.pending[pending_id] = auth
        name = state.registrations[auth.client_id].name
    lines = [f"Application {name} asks for access.", f"Scopes: {' '.join(auth.scopes) or '(none)'}"]
    return html_response(pages.approval("Allow access?", "/authorize", {"request": pending_id}, lines))


def authorize_decision(state: State, request: Request) -> Response:
    """``POST /authorize``: the Allow/Deny form of manual mode."""
    form = request.form()
    with state.lock:
        auth = state.pending.pop(form.get("request", ""), None)
        if auth is None or auth.expires_at <= state.now():
            text = "This sign-in request is unknown, already answered or expired."
            return html_response(pages.message("Sign-in request rejected", text), 400)
        return _decide(state, auth, allow=form.get("decision") == "allow")


def _validate(state: State, params: dict[str, str]) -> AuthRequest | str:
    registration = state.registrations.get(params.get("client_id", ""))
    if registration is None:
        return "Unknown or missing client_id."
    if registration.expires_at <= state.now():
        return "The client registration has expired."
    uri = params.get("redirect_uri", "")
    if not uri or not redirect_allowed(registration.redirect_uris, uri):
        return "redirect_uri is missing or does not match the client's registered redirect URIs."
    if registration.grant_types and "authorization_code" not in registration.grant_types:
        return "The client is not registered for the authorization_code grant."
    if params.get("response_type") != "code":
        return "response_type must be code."
    if params.get("code_challenge_method") != "S256":
        return "code_challenge_method must be S256."
    challenge = params.get("code_challenge", "")
    if not _CHALLENGE.match(challenge):
        return "code_challenge must be 43 characters of base64url (SHA-256, no padding)."
    raw_scopes = params.get("scopes", "")
    scopes = tuple(raw_scopes.split()) if raw_scopes else registration.scopes
    unknown = [scope for scope in scopes if scope not in registration.scopes]
    if unknown:
        return f"scopes not registered for this client: {' '.join(unknown)}"
    expires_at = state.now() + _PENDING_TTL
    state.stats.authorized(uri)
    return AuthRequest(registration.client_id, uri, challenge, scopes, params.get("state"), expires_at)


def _decide(state: State, auth: AuthRequest, allow: bool) -> Response:
    if allow:
        code = secrets.token_urlsafe(32)
        expires_at = state.now() + state.settings.code_ttl
        state.codes[code] = AuthCode(auth.client_id, auth.redirect_uri, auth.challenge, auth.scopes, expires_at)
        pairs = [("code", code)]
    else:
        pairs = [("error", "access_denied")]
    if auth.state is not None:
        pairs.append(("state", auth.state))
    separator = "&" if urlsplit(auth.redirect_uri).query else "?"
    return redirect(auth.redirect_uri + separator + urlencode(pairs, quote_via=quote, safe=""))


def _device(state: State, user_code: str) -> DeviceGrant | None:
    normal = re.sub(r"[\s-]", "", user_code).upper()
    device = state.devices.get(state.user_codes.get(normal, ""))
    if device is None or device.expires_at <= state.now():
        return None
    return device


def device_page(state: State, request: Request) -> Response:
    """``GET /device``: the verification page a user opens for the device-code flow."""
    user_code = request.arg("user_code")
    if not user_code:
        return html_response(pages.device_entry())
    with state.lock:
        device = _device(state, user_code)
        if device is None:
            return html_response(pages.message("Unknown code", "This code is unknown or has expired."), 400)
        if device.decision is not None or device.consumed:
            return html_response(pages.message("Already answered", "This request was already answered."))
        name = state.registrations[device.client_id].name
        lines = [f"Application {name} asks for access.", f"Code: {device.user_code}"]
        hidden = {"user_code": device.user_code}
    return html_response(pages.approval("Authorize this device?", "/device", hidden, lines))


def device_decision(state: State, request: Request) -> Response:
    """``POST /device``: the Allow/Deny form of the device verification page."""
    form = request.form()
    with state.lock:
        device = _device(state, form.get("user_code", ""))
        if device is None:
            return html_response(pages.message("Unknown code", "This code is unknown or has expired."), 400)
        if device.decision is not None or device.consumed:
            return html_response(pages.message("Already answered", "This request was already answered."))
        device.decision = "allow" if form.get("decision") == "allow" else "deny"
    if device.decision == "allow":
        return html_response(pages.message("Request approved", "You can close this window."))
    return html_response(pages.message("Request denied", "You can close this window."))
