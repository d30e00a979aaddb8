"""SSO portal: GetRoleCredentials, ListAccounts, ListAccountRoles and Logout."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from typing import Any, TypeVar

from ssocred.emulator.directory import Account
from ssocred.emulator.errors import portal_error
from ssocred.emulator.state import AccessToken, State
from ssocred.emulator.wire import Request, Response, json_response

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
BEARER_HEADER = "x-amz-sso_bearer_token"
_T = TypeVar("_T")


def _bearer(state: State, request: Request) -> AccessToken:
    token = request.header(BEARER_HEADER) or ""
    record = state.access_tokens.get(token)
    if record is None or record.revoked or record.expires_at <= state.now():
        raise portal_error("UnauthorizedException", "Session token not found or invalid")
    return record


def _required(request: Request, wire_name: str, model_name: str) -> str:
    value = request.arg(wire_name)
    if not value:
        raise portal_error(
            "InvalidRequestException",
            f"1 validation error detected: Value null at '{model_name}' failed to satisfy constraint: "
            "Member must not be null",
        )
    return value


def _assigned(state: State, account_id: str) -> Account:
    account = state.directory.account(account_id)
    if account is None:
        raise portal_error("ResourceNotFoundException", "No access")
    return account


def _page_size(request: Request) -> int:
    raw = request.arg("max_result")
    if raw is None:
        return DEFAULT_PAGE_SIZE
    try:
        size = int(raw)
    except ValueError:
        size = 0
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise portal_error(
            "InvalidRequestException",
            f"1 validation error detected: Value '{raw}' at 'maxResults' failed to satisfy constraint: "
            f"Member must have value between 1 and {MAX_PAGE_SIZE}",
        )
    return size


def _sign(state: State, text: str) -> str:
    return hmac.new(state.page_key, text.encode(), hashlib.sha256).hexdigest()[:24]


def _page(state: State, request: Request, items: Sequence[_T], scope: str) -> tuple[Sequence[_T], str | None]:
    """One page of ``items`` and the opaque token for the next one (None on the last page)."""
    size = _page_size(request)
    offset = 0
    token = request.arg("next_token")
    if token:
        try:
            text = base64.urlsafe_b64decode(token.encode() + b"==").decode()
            body, mac = text.rsplit("|", 1)
            kind, offset_text = body.rsplit("|", 1)
            offset = int(offset_text)
        except (ValueError, binascii.Error, UnicodeDecodeError):
            kind, mac, body = "", "", ""
        if kind != scope or not hmac.compare_digest(mac, _sign(state, body)) or offset > len(items):
            raise portal_error("InvalidRequestException", "Invalid nextToken")
    end = offset + size
    if end >= len(items):
        return items[offset:], None
    body = f"{scope}|{end}"
    next_token = base64.urlsafe_b64encode(f"{body}|{_sign(state, body)}".encode()).decode().rstrip("=")
    return items[offset:end], next_token


def _listing(key: str, items: list[dict[str, str]], next_token: str | None) -> Response:
    payload: dict[str, Any] = {key: items}
    if next_token:
        payload["nextToken"] = next_token
    return json_response(payload)


def get_role_credentials(state: State, request: Request) -> Response:
    """GetRoleCredentials: ``GET /federation/credentials?role_name=&account_id=``."""
    with state.lock:
        _bearer(state, request)
        role_name = _required(request, "role_name", "roleName")
        account = _assigned(state, _required(request, "account_id", "accountId"))
        if role_name not in account.roles:
            raise portal_error("ResourceNotFoundException", "No access")
        credentials = state.issue_key(account.account_id, role_name)
    return json_response({"roleCredentials": credentials})


def list_accounts(state: State, request: Request) -> Response:
    """ListAccounts: ``GET /assignment/accounts?max_result=&next_token=``."""
    with state.lock:
        _bearer(state, request)
        accounts, next_token = _page(state, request, state.directory.accounts, "accounts")
    items = [{"accountId": a.account_id, "accountName": a.name, "emailAddress": a.email} for a in accounts]
    return _listing("accountList", items, next_token)


def list_account_roles(state: State, request: Request) -> Response:
    """ListAccountRoles: ``GET /assignment/roles?account_id=&max_result=&next_token=``."""
    with state.lock:
        _bearer(state, request)
        account = _assigned(state, _required(request, "account_id", "accountId"))
        roles, next_token = _page(state, request, account.roles, f"roles:{account.account_id}")
    items = [{"roleName": role, "accountId": account.account_id} for role in roles]
    return _listing("roleList", items, next_token)


def logout(state: State, request: Request) -> Response:
    """Logout: ``POST /logout`` ends the sign-in session (its access and refresh tokens)."""
    with state.lock:
        token = _bearer(state, request)
        state.revoke_session(token.session)
    return Response(200)
