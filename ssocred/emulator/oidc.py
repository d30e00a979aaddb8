"""sso-oidc: RegisterClient, StartDeviceAuthorization and CreateToken (all three grants)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from typing import Any
from urllib.parse import urlsplit

from ssocred.emulator.errors import oidc_error
from ssocred.emulator.state import DEVICE_GRANT, GRANT_KEYS, DeviceGrant, Registration, State
from ssocred.emulator.wire import Request, Response, json_response

DEVICE_INTERVAL = 1
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_SCOPE = re.compile(r"^[\w:./-]{1,256}$")
_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
# Polls are timed on arrival, and two arrivals a full interval apart on the client can land a
# little closer together here; this slack keeps a well-behaved poller from seeing SlowDown.
_POLL_SLACK = 0.9


def body_of(request: Request) -> dict[str, Any]:
    """The JSON object in the request body."""
    try:
        data = json.loads(request.body or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise oidc_error("InvalidRequestException", "Request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise oidc_error("InvalidRequestException", "Request body must be a JSON object")
    return data


def _string(body: dict[str, Any], name: str, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise oidc_error("InvalidRequestException", f"Missing or invalid parameter: {name}")
    return value


def _strings(body: dict[str, Any], name: str) -> tuple[str, ...]:
    value = body.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise oidc_error("InvalidRequestException", f"Invalid parameter: {name} must be a list of strings")
    return tuple(value)


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge of a PKCE code verifier."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def redirect_allowed(registered: tuple[str, ...], uri: str) -> bool:
    """Whether ``uri`` matches a registered redirect URI (any port for a portless loopback one)."""
    if uri in registered:
        return True
    try:
        asked = urlsplit(uri)
        asked.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return False
    if asked.fragment or asked.username is not None or asked.password is not None:
        return False
    for item in registered:
        known = urlsplit(item)
        if (
            known.scheme == "http"
            and known.hostname in LOOPBACK_HOSTS
            and known.port is None
            and asked.scheme == known.scheme
            and asked.hostname == known.hostname
            and (asked.path or "/") == (known.path or "/")
            and asked.query == known.query
        ):
            return True
    return False


def _valid_redirect(uri: str) -> bool:
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return False
    if parts.scheme == "https":
        return bool(parts.hostname) and not parts.fragment
    return parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS and not parts.fragment


def register_client(state: State, request: Request) -> Response:
    """RegisterClient: ``POST /client/register``."""
    body = body_of(request)
    name = _string(body, "clientName")
    if body.get("clientType") != "public":
        raise oidc_error("InvalidClientMetadataException", "Invalid client type, only public is supported")
    scopes = _strings(body, "scopes")
    grants = _strings(body, "grantTypes")
    redirects = _strings(body, "redirectUris")
    issuer = _string(body, "issuerUrl", required=False)
    for scope in scopes:
        if not _SCOPE.match(scope):
            raise oidc_error("InvalidScopeException", "Invalid scope requested")
    for grant in grants:
        if grant not in GRANT_KEYS:
            raise oidc_error("UnsupportedGrantTypeException", f"Unsupported grant type: {grant}")
    for uri in redirects:
        if not _valid_redirect(uri):
            raise oidc_error("InvalidRedirectUriException", "Invalid redirect URI")
    if "authorization_code" in grants:
        if not redirects:
            raise oidc_error("InvalidRedirectUriException", "The authorization_code grant needs redirectUris")
        if not issuer:
            raise oidc_error("InvalidRequestException", "The authorization_code grant needs an issuerUrl")
    with state.lock:
        issued = int(state.now())
        registration = Registration(
            client_id=state.new_id(22),
            client_secret="eyJ" + secrets.token_urlsafe(96),
            name=str(name),
            scopes=scopes,
            grant_types=grants,
            redirect_uris=redirects,
            issuer_url=issuer,
            issued_at=issued,
            expires_at=issued + state.settings.registration_ttl,
        )
        state.registrations[registration.client_id] = registration
    return json_response(
        {
            "clientId": registration.client_id,
            "clientSecret": registration.client_secret,
            "clientIdIssuedAt": registration.issued_at,
            "clientSecretExpiresAt": registration.expires_at,
        }
    )


def authenticate(state: State, body: dict[str, Any]) -> Registration:
    """The registration whose clientId and clientSecret the body carries (caller holds the lock)."""
    client_id = _string(body, "clientId")
    secret = _string(body, "clientSecret")
    registration = state.registrations.get(str(client_id))
    if registration is None or not hmac.compare_digest(registration.client_secret, str(secret)):
        raise oidc_error("InvalidClientException", "Invalid client provided")
    if registration.expires_at <= state.now():
        raise oidc_error("InvalidClientException", "Client registration has expired")
    return registration


def _allowed(registration: Registration, grant: str) -> None:
    if registration.grant_types and grant not in registration.grant_types:
        raise oidc_error("UnauthorizedClientException", f"Client is not authorized for grant type {grant}")


def start_device_authorization(state: State, request: Request) -> Response:
    """StartDeviceAuthorization: ``POST /device_authorization``."""
    body = body_of(request)
    with state.lock:
        registration = authenticate(state, body)
        start_url = _string(body, "startUrl")
        _allowed(registration, DEVICE_GRANT)
        device_code = secrets.token_urlsafe(48)
        user_code = state.new_user_code()
        ttl = state.settings.device_ttl
        state.devices[device_code] = DeviceGrant(
            registration.client_id, user_code, str(start_url), state.now() + ttl, DEVICE_INTERVAL
        )
        state.user_codes[user_code.replace("-", "")] = device_code
    return json_response(
        {
            "deviceCode": device_code,
            "userCode": user_code,
            "verificationUri": f"{request.base_url}/device",
            "verificationUriComplete": f"{request.base_url}/device?user_code={user_code}",
            "expiresIn": ttl,
            "interval": DEVICE_INTERVAL,
        }
    )


def create_token(state: State, request: Request) -> Response:
    """CreateToken: ``POST /token`` for the device-code, authorization-code and refresh-token grants."""
    body = body_of(request)
    grant = _string(body, "grantType")
    handlers = {
        DEVICE_GRANT: _device_grant,
        "authorization_code": _code_grant,
        "refresh_token": _refresh_grant,
    }
    with state.lock:
        registration = authenticate(state, body)
        handler = handlers.get(str(grant))
        if handler is None:
            raise oidc_error("UnsupportedGrantTypeException", f"Unsupported grant type: {grant}")
        _allowed(registration, str(grant))
        result = handler(state, registration, body)
        state.stats.create_token[GRANT_KEYS[str(grant)]] += 1
    return json_response(result)


def _device_grant(state: State, registration: Registration, body: dict[str, Any]) -> dict[str, Any]:
    code = str(_string(body, "deviceCode"))
    device = state.devices.get(code)
    if device is None or device.client_id != registration.client_id or device.consumed:
        raise oidc_error("InvalidGrantException", "Invalid grant provided")
    now = state.now()
    if now >= device.expires_at:
        raise oidc_error("ExpiredTokenException", "Device code has expired")
    earlier_polls, last_poll = device.polls, device.last_poll
    device.polls += 1
    device.last_poll = now
    settings = state.settings
    if device.decision is None and not settings.manual_approve and earlier_polls >= settings.approve_after_polls:
        device.decision = "deny" if settings.deny_authorize else "allow"
    if device.decision == "deny":
        device.consumed = True
        raise oidc_error("AccessDeniedException", "Access denied")
    if device.decision == "allow":
        device.consumed = True
        return state.issue_tokens(registration, registration.scopes, secrets.token_hex(8))
    if last_poll is not None and now - last_poll < device.interval * _POLL_SLACK:
        raise oidc_error("SlowDownException", "Client is polling too quickly")
    raise oidc_error("AuthorizationPendingException", "Authorization is still pending")


def _code_grant(state: State, registration: Registration, body: dict[str, Any]) -> dict[str, Any]:
    code = str(_string(body, "code"))
    redirect_uri = body.get("redirectUri")
    verifier = body.get("codeVerifier")
    grant = state.codes.get(code)
    invalid = oidc_error("InvalidGrantException", "Invalid grant provided")
    if grant is None or grant.client_id != registration.client_id or grant.used:
        raise invalid
    if state.now() >= grant.expires_at:
        raise invalid
    if not isinstance(redirect_uri, str) or redirect_uri != grant.redirect_uri:
        raise invalid
    if not isinstance(verifier, str) or not _VERIFIER.match(verifier):
        raise invalid
    if not hmac.compare_digest(pkce_challenge(verifier), grant.challenge):
        raise invalid
    grant.used = True
    return state.issue_tokens(registration, grant.scopes, secrets.token_hex(8))


def _refresh_grant(state: State, registration: Registration, body: dict[str, Any]) -> dict[str, Any]:
    token = str(_string(body, "refreshToken"))
    record = state.refresh_tokens.get(token)
    if record is None or record.client_id != registration.client_id or record.revoked:
        raise oidc_error("InvalidGrantException", "Invalid grant provided")
    if record.used:
        state.stats.refresh_token_reuse_rejected += 1
        raise oidc_error("InvalidGrantException", "Invalid grant provided")
    result = state.issue_tokens(registration, record.scopes, record.session)
    if state.settings.rotate:
        record.used = True
    else:
        state.refresh_tokens.pop(result["refreshToken"], None)
        result["refreshToken"] = token
    return result
