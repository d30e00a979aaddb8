"""Modeled service errors and their wire encodings (JSON with ``x-amzn-ErrorType``, or STS XML)."""

from __future__ import annotations

import json
from xml.sax.saxutils import escape

from ssocred.emulator.wire import Response

OIDC_NAMESPACE = "http://internal.amazon.com/coral/com.amazonaws.sso.oidc/"
PORTAL_NAMESPACE = "http://internal.amazon.com/coral/com.amazon.switchboard.portal/"
STS_XMLNS = "https://sts.amazonaws.com/doc/2011-06-15/"

# Status and OAuth2 ``error`` value of each sso-oidc exception (botocore's service model).
_OIDC: dict[str, tuple[int, str]] = {
    "AccessDeniedException": (400, "access_denied"),
    "AuthorizationPendingException": (400, "authorization_pending"),
    "ExpiredTokenException": (400, "expired_token"),
    "InternalServerException": (500, "server_error"),
    "InvalidClientException": (401, "invalid_client"),
    "InvalidClientMetadataException": (400, "invalid_client_metadata"),
    "InvalidGrantException": (400, "invalid_grant"),
    "InvalidRedirectUriException": (400, "invalid_redirect_uri"),
    "InvalidRequestException": (400, "invalid_request"),
    "InvalidScopeException": (400, "invalid_scope"),
    "SlowDownException": (400, "slow_down"),
    "TooManyRequestsException": (429, "too_many_requests"),
    "UnauthorizedClientException": (400, "unauthorized_client"),
    "UnsupportedGrantTypeException": (400, "unsupported_grant_type"),
}

_PORTAL: dict[str, int] = {
    "InvalidRequestException": 400,
    "UnauthorizedException": 401,
    "ResourceNotFoundException": 404,
    "TooManyRequestsException": 429,
    "InternalServerException": 500,
}


class ApiError(Exception):
    """A service error; the HTTP layer renders it in the style of the service that raised it."""

    def __init__(self, code: str, status: int, message: str, oauth_error: str = "", sender: bool = True):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.status = status
        self.message = message
        self.oauth_error = oauth_error
        self.sender = sender


def oidc_error(code: str, description: str) -> ApiError:
    """An sso-oidc exception by its model name."""
    status, oauth = _OIDC[code]
    return ApiError(code, status, description, oauth)


def portal_error(code: str, message: str) -> ApiError:
    """An SSO portal exception by its model name."""
    return ApiError(code, _PORTAL[code], message)


def sts_error(code: str, status: int, message: str, sender: bool = True) -> ApiError:
    """An STS (query protocol) error."""
    return ApiError(code, status, message, sender=sender)


def render(style: str, error: ApiError, request_id: str) -> Response:
    """Encode an error the way the named service does (``oidc``, ``portal``, ``sts`` or ``control``)."""
    if style == "sts":
        kind = "Sender" if error.sender else "Receiver"
        body = (
            f'<ErrorResponse xmlns="{STS_XMLNS}">\n  <Error>\n    <Type>{kind}</Type>\n'
            f"    <Code>{escape(error.code)}</Code>\n    <Message>{escape(error.message)}</Message>\n"
            f"  </Error>\n  <RequestId>{request_id}</RequestId>\n</ErrorResponse>\n"
        )
        return Response(error.status, body.encode(), [("Content-Type", "text/xml")])
    if style == "oidc":
        payload = {"error": error.oauth_error or "server_error", "error_description": error.message}
        kind_header = f"{error.code}:{OIDC_NAMESPACE}"
    else:
        payload = {"message": error.message}
        kind_header = f"{error.code}:{PORTAL_NAMESPACE}" if style == "portal" else error.code
    headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", kind_header)]
    return Response(error.status, json.dumps(payload).encode(), headers)


def injected(style: str, kind: str) -> ApiError:
    """The error an injected fault (``fail`` or ``throttle``) produces for a service."""
    if style == "sts":
        if kind == "fail":
            return sts_error("InternalFailure", 500, "An internal error occurred (injected).", sender=False)
        return sts_error("Throttling", 400, "Rate exceeded (injected)")
    if kind == "fail":
        return ApiError("InternalServerException", 500, "Internal server error (injected)", "server_error")
    return ApiError("TooManyRequestsException", 429, "Too many requests (injected)", "too_many_requests")
