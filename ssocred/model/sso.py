"""The pure model: SSO tokens, client registrations, role credentials and when to renew them.

No I/O here. Times are POSIX seconds (floats); ``iso_z`` renders them for the outside world.
Example: ``needs_inline_refresh(token, now=time.time())``
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field
from typing import Any

#: botocore refreshes credentials with under 15 minutes left on every access (PROTOCOL §6.3).
BOTOCORE_ADVISORY_WINDOW = 15 * 60
#: ssocred refreshes an SSO token inline (no daemon) when this close to its expiry.
INLINE_TOKEN_WINDOW = 5 * 60
#: A login registers a new client when the stored one has less than this left. The AWS CLI's
#: margin is 15 minutes (PROTOCOL §3.2); a week means a session that logs in now and then never
#: reaches the registration's end, after which its refresh token stops working.
REGISTRATION_MARGIN = 7 * 86400
#: Share of a lifetime a window may take at most, so short test lifetimes scale the same way.
WINDOW_SHARE = 0.25

DEFAULT_SCOPES: tuple[str, ...] = ("sso:account:access",)
GRANT_AUTH_CODE = "authorization_code"
GRANT_REFRESH = "refresh_token"
GRANT_DEVICE = "urn:ietf:params:oauth:grant-type:device_code"


def scaled_window(window: float, lifetime: float) -> float:
    """A refresh window no larger than a quarter of the lifetime: ``scaled_window(900, 40) == 10``."""
    if lifetime <= 0:
        return window
    return min(window, lifetime * WINDOW_SHARE)


def iso_z(ts: float) -> str:
    """UTC ``YYYY-MM-DDTHH:MM:SSZ``: ``iso_z(0) == "1970-01-01T00:00:00Z"``."""
    return _dt.datetime.fromtimestamp(int(ts), _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> float:
    """Lenient RFC 3339 / AWS CLI time to POSIX seconds: ``parse_time("2099-01-01T00:00:00UTC")``.

    Accepts ``Z``, ``+00:00``, fractional seconds and the legacy ``UTC`` suffix; a time with no
    zone is taken as UTC (the AWS CLI always means UTC). Raises ValueError on anything else.
    """
    s = text.strip()
    if s.endswith("UTC"):
        s = s[:-3] + "+00:00"
    elif s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    parsed = _dt.datetime.fromisoformat(s)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_dt.timezone.utc)
    return parsed.timestamp()


@dataclass(frozen=True)
class Registration:
    """An sso-oidc client registration: ``Registration("cid", "secret", expires_at=1.9e9)``."""

    client_id: str
    client_secret: str = field(repr=False)
    expires_at: float
    scopes: tuple[str, ...] = ()
    grant_types: tuple[str, ...] = ()

    def usable(self, now: float, *, for_auth_code: bool) -> bool:
        """Reusable for a login: far enough from expiry and registered for that flow."""
        if self.expires_at - now < REGISTRATION_MARGIN:
            return False
        return (GRANT_AUTH_CODE in self.grant_types) == for_auth_code

    def can_refresh(self, now: float) -> bool:
        """Whether a refresh-token grant with this registration can still succeed."""
        return self.expires_at > now


@dataclass(frozen=True)
class Token:
    """An SSO access token with what is needed to refresh it.

    Example: ``Token("at", expires_at=now + 3600, issued_at=now, start_url=u, region="us-east-1")``
    """

    access_token: str = field(repr=False)
    expires_at: float
    issued_at: float
    start_url: str
    region: str
    refresh_token: str | None = field(default=None, repr=False)
    registration: Registration | None = None

    @property
    def lifetime(self) -> float:
        """Seconds between issue and expiry."""
        return max(0.0, self.expires_at - self.issued_at)

    def remaining(self, now: float) -> float:
        """Seconds left before expiry (negative once expired)."""
        return self.expires_at - now

    def refreshable(self, now: float) -> bool:
        """Has a refresh token and a registration that has not expired."""
        return bool(self.refresh_token) and self.registration is not None and self.registration.can_refresh(now)


@dataclass(frozen=True)
class RoleCredentials:
    """Credentials from GetRoleCredentials for one account and role."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: float
    account_id: str
    role_name: str
    issued_at: float

    @property
    def lifetime(self) -> float:
        """Seconds between fetch and expiry."""
        return max(0.0, self.expiration - self.issued_at)

    def remaining(self, now: float) -> float:
        """Seconds left before expiry."""
        return self.expiration - now


def fingerprint(token: Token) -> str:
    """A short, one-way name of an access token, to tell tokens apart without showing one.

    Example: ``fingerprint(token) == fingerprint(store.load_session("corp"))`` while nobody refreshed.
    """
    import hashlib  # deferred: loading OpenSSL costs the start-up of every caller

    return hashlib.sha256(token.access_token.encode("utf-8")).hexdigest()[:16]


def needs_inline_refresh(token: Token, now: float) -> bool:
    """Whether a caller without the daemon should refresh now: expired or nearly so."""
    return token.remaining(now) <= scaled_window(INLINE_TOKEN_WINDOW, token.lifetime)


def token_usable(token: Token, now: float) -> bool:
    """Whether the access token can still be sent (a little slack for the round trip)."""
    return token.remaining(now) > min(30.0, token.lifetime * 0.05)


def credentials_fresh(creds: RoleCredentials, now: float) -> bool:
    """Whether cached credentials may be handed out: more than botocore's window left (scaled)."""
    return creds.remaining(now) > scaled_window(BOTOCORE_ADVISORY_WINDOW, creds.lifetime)


def process_output(creds: RoleCredentials) -> dict[str, Any]:
    """The credential_process JSON object (PROTOCOL §6.2): Version is the integer 1."""
    return {
        "Version": 1,
        "AccessKeyId": creds.access_key_id,
        "SecretAccessKey": creds.secret_access_key,
        "SessionToken": creds.session_token,
        "Expiration": iso_z(creds.expiration),
        "AccountId": creds.account_id,
    }


def container_output(creds: RoleCredentials) -> dict[str, Any]:
    """The container credentials endpoint's JSON (PROTOCOL §10.3): ``Token``, not ``SessionToken``.

    Example: ``container_output(creds)["Token"] == creds.session_token``
    """
    return {
        "AccessKeyId": creds.access_key_id,
        "SecretAccessKey": creds.secret_access_key,
        "Token": creds.session_token,
        "Expiration": iso_z(creds.expiration),
        "AccountId": creds.account_id,
    }


def process_text(creds: RoleCredentials) -> str:
    """Everything ``ssocred process`` prints for ``creds``: the JSON object and a newline.

    Example: ``process_text(creds).startswith('{"Version": 1, "AccessKeyId": "ASIA')``
    """
    return json.dumps(process_output(creds)) + "\n"


# --- serialisation for the store (kept here so it stays pure and testable) ---------------


def registration_to_dict(reg: Registration) -> dict[str, Any]:
    """A JSON-ready dict of a registration."""
    return {
        "clientId": reg.client_id,
        "clientSecret": reg.client_secret,
        "expiresAt": reg.expires_at,
        "scopes": list(reg.scopes),
        "grantTypes": list(reg.grant_types),
    }


def registration_from_dict(data: dict[str, Any]) -> Registration:
    """Inverse of ``registration_to_dict``; raises KeyError/TypeError/ValueError when malformed."""
    return Registration(
        client_id=str(data["clientId"]),
        client_secret=str(data["clientSecret"]),
        expires_at=float(data["expiresAt"]),
        scopes=tuple(str(s) for s in data.get("scopes") or ()),
        grant_types=tuple(str(g) for g in data.get("grantTypes") or ()),
    )


def token_to_dict(token: Token) -> dict[str, Any]:
    """A JSON-ready dict of a token, registration included."""
    return {
        "accessToken": token.access_token,
        "expiresAt": token.expires_at,
        "issuedAt": token.issued_at,
        "startUrl": token.start_url,
        "region": token.region,
        "refreshToken": token.refresh_token,
        "registration": registration_to_dict(token.registration) if token.registration else None,
    }


def token_from_dict(data: dict[str, Any]) -> Token:
    """Inverse of ``token_to_dict``; raises KeyError/TypeError/ValueError when malformed."""
    reg = data.get("registration")
    return Token(
        access_token=str(data["accessToken"]),
        expires_at=float(data["expiresAt"]),
        issued_at=float(data["issuedAt"]),
        start_url=str(data["startUrl"]),
        region=str(data["region"]),
        refresh_token=str(data["refreshToken"]) if data.get("refreshToken") else None,
        registration=registration_from_dict(reg) if reg else None,
    )


def credentials_to_dict(creds: RoleCredentials) -> dict[str, Any]:
    """A JSON-ready dict of role credentials."""
    return {
        "accessKeyId": creds.access_key_id,
        "secretAccessKey": creds.secret_access_key,
        "sessionToken": creds.session_token,
        "expiration": creds.expiration,
        "accountId": creds.account_id,
        "roleName": creds.role_name,
        "issuedAt": creds.issued_at,
    }


def credentials_from_dict(data: dict[str, Any]) -> RoleCredentials:
    """Inverse of ``credentials_to_dict``; raises KeyError/TypeError/ValueError when malformed."""
    return RoleCredentials(
        access_key_id=str(data["accessKeyId"]),
        secret_access_key=str(data["secretAccessKey"]),
        session_token=str(data["sessionToken"]),
        expiration=float(data["expiration"]),
        account_id=str(data["accountId"]),
        role_name=str(data["roleName"]),
        issued_at=float(data["issuedAt"]),
    )


def login_command(session: str) -> str:
    """The command that logs a stored session in: ``login_command("corp")``.

    Legacy sessions are keyed by their start URL and are logged in through a profile.
    """
    if "://" in session:
        return "ssocred login --profile <a profile with sso_start_url = " + session + ">"
    return f"ssocred login --sso-session {session}"

