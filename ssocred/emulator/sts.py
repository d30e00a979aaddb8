"""STS GetCallerIdentity (query protocol): maps an issued access key back to its account and role."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from ssocred.emulator.errors import STS_XMLNS, sts_error
from ssocred.emulator.state import State
from ssocred.emulator.wire import Request, Response

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
_INVALID = "The security token included in the request is invalid."


def _params(request: Request) -> dict[str, str]:
    merged = {name: values[0] for name, values in request.query.items()}
    form = parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)
    merged.update({name: values[0] for name, values in form.items()})
    return merged


def _access_key(request: Request, params: dict[str, str]) -> str | None:
    match = _CREDENTIAL.search(request.header("authorization") or "")
    if match:
        return match.group(1)
    credential = params.get("X-Amz-Credential", "")
    return credential.split("/", 1)[0] or None


def role_id(account_id: str, role_name: str) -> str:
    """The stable ``AROA…`` unique id of a role."""
    digest = hashlib.sha256(f"{account_id}/{role_name}".encode()).digest()
    return "AROA" + base64.b32encode(digest).decode()[:17]


def get_caller_identity(state: State, request: Request) -> Response:
    """GetCallerIdentity: ``POST /`` with ``Action=GetCallerIdentity``, any SigV4 signature."""
    params = _params(request)
    action = params.get("Action")
    if action != "GetCallerIdentity":
        raise sts_error("InvalidAction", 400, f"Could not find operation {action} for version 2011-06-15")
    key_id = _access_key(request, params)
    if key_id is None:
        raise sts_error("MissingAuthenticationToken", 403, "Request is missing Authentication Token")
    session_token = request.header("x-amz-security-token") or params.get("X-Amz-Security-Token", "")
    with state.lock:
        issued = state.keys.get(key_id)
        if issued is None or not hmac.compare_digest(issued.session_token, session_token):
            raise sts_error("InvalidClientTokenId", 403, _INVALID)
        if issued.expires_at <= state.now():
            raise sts_error("ExpiredToken", 403, "The security token included in the request is expired")
        user = state.directory.user
    account, role = escape(issued.account_id), escape(issued.role_name)
    body = (
        f'<GetCallerIdentityResponse xmlns="{STS_XMLNS}">\n  <GetCallerIdentityResult>\n'
        f"    <Arn>arn:aws:sts::{account}:assumed-role/{role}/{escape(user)}</Arn>\n"
        f"    <UserId>{role_id(issued.account_id, issued.role_name)}:{escape(user)}</UserId>\n"
        f"    <Account>{account}</Account>\n  </GetCallerIdentityResult>\n"
        f"  <ResponseMetadata>\n    <RequestId>{request.request_id}</RequestId>\n  </ResponseMetadata>\n"
        "</GetCallerIdentityResponse>\n"
    )
    return Response(200, body.encode(), [("Content-Type", "text/xml")])
