"""The SSO portal adapter: role credentials, accounts, roles and logout.

Example: ``Portal("us-east-1").role_credentials(access_token, "111122223333", "ReadOnly")``
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ssocred.adapters import aws, network_client, server_text
from ssocred.errors import AccessDenied, ServiceError
from ssocred.model.sso import RoleCredentials


@dataclass(frozen=True)
class Account:
    """One account the user can reach: ``Account("111122223333", "prod", "ops@example.com")``."""

    account_id: str
    name: str
    email: str


#: What GetRoleCredentials must answer (expiration in epoch milliseconds).
_CREDENTIALS: dict[str, Any] = {
    "roleCredentials": {"accessKeyId": str, "secretAccessKey": str, "sessionToken": str, "expiration": int},
}


def _malformed(op: str, what: str) -> ServiceError:
    return ServiceError(f"the SSO portal answered {op} with {what}: a proxy may be in the way",
                        fix="check HTTPS_PROXY, NO_PROXY and the endpoint settings, then run: ssocred doctor")


class TokenRejected(Exception):
    """The portal answered 401: the SSO access token is expired, revoked or unknown."""


class Portal:
    """The SSO portal in one SSO region, through an unsigned boto3 client.

    ``pace`` is called before each request (a client-side rate limit); ``pool`` sizes the
    connection pool for callers that share one Portal between threads.
    """

    def __init__(self, region: str, *, pace: Callable[[], None] | None = None, pool: int = 10) -> None:
        self.region = region
        self._pace = pace
        self._pool = pool
        # A daemon's calls go to its network worker: no client (nor botocore) here.
        self._made = None if network_client.active() else aws.client("sso", region, pool=pool)

    @property
    def _client(self) -> Any:
        if self._made is None:
            self._made = aws.client("sso", self.region, pool=self._pool)
        return self._made

    def _call(self, op: str, what: str, expect: dict[str, Any] | None, **kwargs: Any) -> dict[str, Any]:
        if self._pace is not None:
            self._pace()
        if network_client.active():
            result: dict[str, Any] = network_client.call(network_client.PORTAL, self.region, self._pool, op, what,
                                                         expect, kwargs)
            return result
        return self.request(op, what, expect, kwargs)

    def request(self, op: str, what: str, expect: dict[str, Any] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Make the call ``op`` here (``what`` names its object in errors): its checked answer.

        Raises TokenRejected (401), AccessDenied or ServiceError.
        Example: ``Portal("us-east-1").request("list_accounts", "the account list", None, {...})``
        """
        from botocore.exceptions import ClientError

        try:
            return aws.invoke(self._client, op, expect=expect, **kwargs)
        except ClientError as exc:
            code = aws.error_code(exc) or "Unknown"
            if code == "UnauthorizedException":
                raise TokenRejected() from None
            if code in ("ResourceNotFoundException", "ForbiddenException", "AccessDeniedException"):
                raise AccessDenied(
                    f"access denied to {what}",
                    fix="see your accounts and roles with: ssocred accounts (ssocred doctor explains more); "
                    "an admin can check the assignment with: ssocred discover",
                ) from None
            raise ServiceError(
                f"SSO portal {op} failed in {self.region}: {server_text.clean(code, 60)}: "
                f"{server_text.service_message(exc)}",
                fix="try again in a minute",
            ) from None

    def role_credentials(self, access_token: str, account_id: str, role_name: str) -> RoleCredentials:
        """GetRoleCredentials; ``expiration`` arrives in epoch milliseconds."""
        issued = time.time()
        resp = self._call(
            "get_role_credentials", f"role '{role_name}' in account {account_id}", _CREDENTIALS,
            accessToken=access_token, accountId=account_id, roleName=role_name,
        )
        rc = resp["roleCredentials"]
        return RoleCredentials(
            access_key_id=rc["accessKeyId"],
            secret_access_key=rc["secretAccessKey"],
            session_token=rc["sessionToken"],
            expiration=int(rc["expiration"]) / 1000.0,
            account_id=account_id,
            role_name=role_name,
            issued_at=issued,
        )

    def accounts(self, access_token: str) -> list[Account]:
        """Every account of the user (all pages of ListAccounts)."""
        out: list[Account] = []
        kwargs: dict[str, Any] = {"accessToken": access_token, "maxResults": 100}
        while True:
            resp = self._call("list_accounts", "the account list", {"accountList": list}, **kwargs)
            for a in resp["accountList"]:
                if not (isinstance(a, dict) and isinstance(a.get("accountId"), str)):
                    raise _malformed("ListAccounts", "an account without an id")
                out.append(Account(a["accountId"], str(a.get("accountName") or ""), str(a.get("emailAddress") or "")))
            token = resp.get("nextToken")
            if not token:
                return out
            kwargs["nextToken"] = token

    def roles(self, access_token: str, account_id: str) -> list[str]:
        """Every role name the user has in ``account_id`` (all pages of ListAccountRoles)."""
        out: list[str] = []
        kwargs: dict[str, Any] = {"accessToken": access_token, "accountId": account_id, "maxResults": 100}
        while True:
            resp = self._call("list_account_roles", f"account {account_id}", {"roleList": list}, **kwargs)
            for r in resp["roleList"]:
                if not (isinstance(r, dict) and isinstance(r.get("roleName"), str)):
                    raise _malformed("ListAccountRoles", "a role without a name")
                out.append(r["roleName"])
            token = resp.get("nextToken")
            if not token:
                return out
            kwargs["nextToken"] = token

    def logout(self, access_token: str) -> None:
        """Logout: revokes the access token on the service side."""
        self._call("logout", "logout", None, accessToken=access_token)

