"""The sso-oidc adapter: client registration, device authorization and token grants.

Example: ``Oidc("us-east-1").refresh(registration, refresh_token)``
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ssocred.adapters import aws, network_client, server_text
from ssocred.errors import ServiceError
from ssocred.model.sso import GRANT_AUTH_CODE, GRANT_DEVICE, GRANT_REFRESH, Registration


class OAuthError(Exception):
    """A 400-class OAuth answer the caller handles (pending, slow_down, invalid_grant, ...).

    Example: ``OAuthError("AuthorizationPendingException")``; carries only the error code.
    """

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class DeviceAuthorization:
    """What StartDeviceAuthorization returned: show ``verification_uri`` and ``user_code``."""

    device_code: str = field(repr=False)
    user_code: str
    verification_uri: str
    verification_uri_complete: str
    expires_in: int
    interval: int


@dataclass(frozen=True)
class Grant:
    """A CreateToken answer: ``Grant("at", 3600, "rt")``."""

    access_token: str = field(repr=False)
    expires_in: int
    refresh_token: str | None = field(default=None, repr=False)


#: OAuth errors that mean "this login or refresh can never succeed": a new login is needed.
_DEAD = {"InvalidGrantException", "InvalidClientException", "UnauthorizedClientException",
         "ExpiredTokenException", "AccessDeniedException"}
#: OAuth errors a polling loop or the caller handles itself.
_HANDLED = {"AuthorizationPendingException", "SlowDownException"} | _DEAD


class Oidc:
    """sso-oidc in one SSO region, through an unsigned boto3 client."""

    def __init__(self, region: str) -> None:
        self.region = region
        # A daemon's calls go to its network worker: no client (nor botocore) here.
        self._made = None if network_client.active() else aws.client("sso-oidc", region)

    @property
    def _client(self) -> Any:
        if self._made is None:
            self._made = aws.client("sso-oidc", self.region)
        return self._made

    @property
    def endpoint(self) -> str:
        """The endpoint in use, e.g. ``https://oidc.us-east-1.amazonaws.com``."""
        return str(self._client.meta.endpoint_url)

    def authorize_base(self) -> str:
        """``scheme://netloc`` of the endpoint: where ``/authorize`` lives (PROTOCOL §1.3)."""
        parts = urlsplit(self.endpoint)
        return f"{parts.scheme}://{parts.netloc}"

    def _call(self, op: str, expect: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if network_client.active():
            result: dict[str, Any] = network_client.call(network_client.OIDC, self.region, op, expect, kwargs)
            return result
        return self.request(op, expect, kwargs)

    def request(self, op: str, expect: dict[str, Any], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Make the call ``op`` here: its answer, checked against ``expect``; OAuthError or ServiceError.

        Example: ``Oidc("us-east-1").request("create_token", {"accessToken": str}, {...})``
        """
        from botocore.exceptions import ClientError

        try:
            return aws.invoke(self._client, op, expect=expect, **kwargs)
        except ClientError as exc:
            code = aws.error_code(exc) or "Unknown"
            if code in _HANDLED:
                raise OAuthError(code) from None
            raise ServiceError(
                f"sso-oidc {op} failed in {self.region}: {server_text.clean(code, 60)}: "
                f"{server_text.service_message(exc)}",
                fix="try again in a minute",
            ) from None

    def register(
        self,
        name: str,
        scopes: tuple[str, ...],
        *,
        auth_code: bool,
        issuer_url: str | None = None,
    ) -> Registration:
        """RegisterClient for the PKCE flow (``auth_code=True``) or the device flow."""
        kwargs: dict[str, Any] = {"clientName": name, "clientType": "public"}
        if scopes:
            kwargs["scopes"] = list(scopes)
        grants: tuple[str, ...] = (GRANT_REFRESH,) if scopes else ()
        if auth_code:
            grants = (GRANT_AUTH_CODE, GRANT_REFRESH)
            kwargs["grantTypes"] = list(grants)
            kwargs["redirectUris"] = ["http://127.0.0.1/oauth/callback"]
            if issuer_url:
                kwargs["issuerUrl"] = issuer_url
        else:
            grants = (GRANT_DEVICE, *grants)
        resp = self._call("register_client", {"clientId": str, "clientSecret": str, "clientSecretExpiresAt": int},
                          **kwargs)
        return Registration(
            client_id=resp["clientId"],
            client_secret=resp["clientSecret"],
            expires_at=float(resp["clientSecretExpiresAt"]),
            scopes=tuple(scopes),
            grant_types=grants,
        )

    def start_device_authorization(self, reg: Registration, start_url: str) -> DeviceAuthorization:
        """StartDeviceAuthorization for ``start_url``."""
        resp = self._call(
            "start_device_authorization", {"deviceCode": str, "userCode": str, "verificationUri": str},
            clientId=reg.client_id, clientSecret=reg.client_secret, startUrl=start_url,
        )
        return DeviceAuthorization(
            device_code=resp["deviceCode"],
            user_code=resp["userCode"],
            verification_uri=resp["verificationUri"],
            verification_uri_complete=resp.get("verificationUriComplete") or resp["verificationUri"],
            expires_in=int(resp.get("expiresIn") or 600),
            interval=int(resp.get("interval") or 5),
        )

    def _grant(self, **kwargs: Any) -> Grant:
        resp = self._call("create_token", {"accessToken": str, "expiresIn": int}, **kwargs)
        return Grant(
            access_token=resp["accessToken"],
            expires_in=int(resp["expiresIn"]),
            refresh_token=resp.get("refreshToken") or None,
        )

    def device_token(self, reg: Registration, device_code: str) -> Grant:
        """One CreateToken poll of the device grant; OAuthError while pending."""
        return self._grant(
            clientId=reg.client_id, clientSecret=reg.client_secret,
            grantType=GRANT_DEVICE, deviceCode=device_code,
        )

    def code_token(self, reg: Registration, code: str, redirect_uri: str, verifier: str) -> Grant:
        """CreateToken with the authorization code and PKCE verifier."""
        return self._grant(
            clientId=reg.client_id, clientSecret=reg.client_secret, grantType=GRANT_AUTH_CODE,
            code=code, redirectUri=redirect_uri, codeVerifier=verifier,
        )

    def refresh(self, reg: Registration, refresh_token: str) -> Grant:
        """CreateToken with the refresh-token grant (no scope, as botocore)."""
        return self._grant(
            clientId=reg.client_id, clientSecret=reg.client_secret,
            grantType=GRANT_REFRESH, refreshToken=refresh_token,
        )


def dead_grant(code: str) -> bool:
    """Whether an OAuth error code means a new login is needed: ``dead_grant("InvalidGrantException")``."""
    return code in _DEAD

