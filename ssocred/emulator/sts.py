"""STS (query protocol, XML): GetCallerIdentity and AssumeRole with keys this emulator issued.

Example: ``POST / Action=AssumeRole&RoleArn=arn:aws:iam::222233334444:role/Deploy&RoleSessionName=ci``
signed with portal credentials answers new credentials; GetCallerIdentity with those reports
``arn:aws:sts::222233334444:assumed-role/Deploy/ci``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from ssocred.emulator.errors import STS_XMLNS, sts_error
from ssocred.emulator.state import IssuedKey, State
from ssocred.emulator.wire import Request, Response

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
_INVALID = "The security token included in the request is invalid."
_ROLE_ARN = re.compile(r"arn:aws(?:-cn|-us-gov)?:iam::(\d{12}):role/(?:[\x21-\x7e]+/)?([\w+=,.@-]{1,64})")
_SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}")
_EXTERNAL_ID = re.compile(r"[\w+=,.@:/-]{2,1224}")
#: Every key this emulator issues is a role session, so AssumeRole with one is role chaining (1 hour at most).
CHAINED_MAX = 3600
_ACTIONS = frozenset({"GetCallerIdentity", "AssumeRole"})


def _params(request: Request) -> dict[str, str]:
    merged = {name: values[0] for name, values in request.query.items()}
    form = parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)
    merged.update({name: values[0] for name, values in form.items()})
    return merged


def operation(request: Request) -> str | None:
    """The operation a request asks for, counted in the stats: ``"AssumeRole"``, or None when unknown."""
    action = _params(request).get("Action")
    return action if action in _ACTIONS else None


def _access_key(request: Request, params: dict[str, str]) -> str | None:
    match = _CREDENTIAL.search(request.header("authorization") or "")
    if match:
        return match.group(1)
    credential = params.get("X-Amz-Credential", "")
    return credential.split("/", 1)[0] or None


def role_id(account_id: str, role_name: str) -> str:
    """The stable ``AROA…`` unique id of a role: ``role_id("111122223333", "Admin").startswith("AROA")``."""
    digest = hashlib.sha256(f"{account_id}/{role_name}".encode()).digest()
    return "AROA" + base64.b32encode(digest).decode()[:17]


def handle(state: State, request: Request) -> Response:
    """``POST /``: the STS action named by ``Action``; an unknown one is an XML InvalidAction (400)."""
    params = _params(request)
    action = params.get("Action")
    if action == "GetCallerIdentity":
        return get_caller_identity(state, request, params)
    if action == "AssumeRole":
        return assume_role(state, request, params)
    raise sts_error("InvalidAction", 400, f"Could not find operation {action} for version 2011-06-15")


def _caller(state: State, request: Request, params: dict[str, str]) -> IssuedKey:
    """The issued key that signed the request; InvalidClientTokenId or ExpiredToken (403) otherwise."""
    key_id = _access_key(request, params)
    if key_id is None:
        raise sts_error("MissingAuthenticationToken", 403, "Request is missing Authentication Token")
    session_token = request.header("x-amz-security-token") or params.get("X-Amz-Security-Token", "")
    issued = state.keys.get(key_id)
    if issued is None or not hmac.compare_digest(issued.session_token, session_token):
        raise sts_error("InvalidClientTokenId", 403, _INVALID)
    if issued.expires_at <= state.now():
        raise sts_error("ExpiredToken", 403, "The security token included in the request is expired")
    return issued


def _session_of(state: State, issued: IssuedKey) -> str:
    """The session part of the caller's ARN: the RoleSessionName, or the portal user's name."""
    return issued.session_name or state.directory.user


def get_caller_identity(state: State, request: Request, params: dict[str, str]) -> Response:
    """GetCallerIdentity: the signing key's account and ARN, e.g. ``arn:aws:sts::2222…:assumed-role/Deploy/ci``."""
    with state.lock:
        issued = _caller(state, request, params)
        session = _session_of(state, issued)
    account, role = escape(issued.account_id), escape(issued.role_name)
    body = (
        f'<GetCallerIdentityResponse xmlns="{STS_XMLNS}">\n  <GetCallerIdentityResult>\n'
        f"    <Arn>arn:aws:sts::{account}:assumed-role/{role}/{escape(session)}</Arn>\n"
        f"    <UserId>{role_id(issued.account_id, issued.role_name)}:{escape(session)}</UserId>\n"
        f"    <Account>{account}</Account>\n  </GetCallerIdentityResult>\n"
        f"  <ResponseMetadata>\n    <RequestId>{request.request_id}</RequestId>\n  </ResponseMetadata>\n"
        "</GetCallerIdentityResponse>\n"
    )
    return Response(200, body.encode(), [("Content-Type", "text/xml")])


def _invalid(value: str, member: str, constraint: str) -> Exception:
    shown = value if len(value) <= 64 else value[:61] + "..."
    return sts_error("ValidationError", 400,
                     f"1 validation error detected: Value '{shown}' at '{member}' failed to satisfy constraint: "
                     f"{constraint}")


def _duration(params: dict[str, str]) -> int:
    raw = params.get("DurationSeconds")
    if raw is None:
        return CHAINED_MAX
    if not raw.isdigit():
        raise _invalid(raw, "durationSeconds", "Member must be a number")
    value = int(raw)
    if value < 900:
        raise _invalid(raw, "durationSeconds", "Member must have value greater than or equal to 900")
    if value > 43200:
        raise _invalid(raw, "durationSeconds", "Member must have value less than or equal to 43200")
    if value > CHAINED_MAX:
        raise sts_error("ValidationError", 400, "The requested DurationSeconds exceeds the 1 hour session limit "
                        "for roles assumed by role chaining.")
    return value


def assume_role(state: State, request: Request, params: dict[str, str]) -> Response:
    """AssumeRole: new role-session credentials for ``RoleArn``, signed with a key this emulator issued.

    As STS: the signature first (403), then the parameters (ValidationError, 400), then the trust (AccessDenied).
    """
    with state.lock:
        _caller(state, request, params)
    arn = params.get("RoleArn", "")
    name = params.get("RoleSessionName", "")
    match = _ROLE_ARN.fullmatch(arn)
    if match is None:
        raise sts_error("ValidationError", 400, f"{arn[:80]} is invalid" if arn else
                        "1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: "
                        "Member must not be null")
    if not _SESSION_NAME.fullmatch(name):
        raise _invalid(name, "roleSessionName", "Member must satisfy regular expression pattern: [\\w+=,.@-]*")
    external = params.get("ExternalId")
    if external is not None and not _EXTERNAL_ID.fullmatch(external):
        raise _invalid(external, "externalId", "Member must satisfy regular expression pattern: [\\w+=,.@:\\/-]*")
    if "SerialNumber" in params and not params.get("TokenCode"):
        raise sts_error("AccessDenied", 403, "MultiFactorAuthentication failed, TokenCode is required.")
    duration = _duration(params)
    account, role = match.group(1), match.group(2)
    with state.lock:
        caller = _caller(state, request, params)
        if arn in state.settings.deny_assume_role:
            who = f"arn:aws:sts::{caller.account_id}:assumed-role/{caller.role_name}/{_session_of(state, caller)}"
            raise sts_error("AccessDenied", 403, f"User: {who} is not authorized to perform: sts:AssumeRole "
                            f"on resource: {arn}")
        issued = state.issue_key(account, role, session_name=name,
                                 lifetime=min(duration, state.settings.cred_ttl))
    expiration = _iso(issued["expiration"] // 1000)
    body = (
        f'<AssumeRoleResponse xmlns="{STS_XMLNS}">\n  <AssumeRoleResult>\n'
        "    <AssumedRoleUser>\n"
        f"      <AssumedRoleId>{role_id(account, role)}:{escape(name)}</AssumedRoleId>\n"
        f"      <Arn>arn:aws:sts::{account}:assumed-role/{escape(role)}/{escape(name)}</Arn>\n"
        "    </AssumedRoleUser>\n    <Credentials>\n"
        f"      <AccessKeyId>{issued['accessKeyId']}</AccessKeyId>\n"
        f"      <SecretAccessKey>{escape(issued['secretAccessKey'])}</SecretAccessKey>\n"
        f"      <SessionToken>{escape(issued['sessionToken'])}</SessionToken>\n"
        f"      <Expiration>{expiration}</Expiration>\n"
        "    </Credentials>\n  </AssumeRoleResult>\n"
        f"  <ResponseMetadata>\n    <RequestId>{request.request_id}</RequestId>\n  </ResponseMetadata>\n"
        "</AssumeRoleResponse>\n"
    )
    return Response(200, body.encode(), [("Content-Type", "text/xml")])


def _iso(ts: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
