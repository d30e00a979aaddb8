"""Everything the emulator remembers: registrations, grants, tokens, issued keys and counters.

All reads and writes happen under ``State.lock``; handlers hold it for their whole state change.
"""

from __future__ import annotations

import math
import secrets
import string
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ssocred.emulator.directory import Directory, seeded
from ssocred.emulator.settings import Settings

OPERATIONS = (
    "RegisterClient",
    "StartDeviceAuthorization",
    "CreateToken",
    "Authorize",
    "GetRoleCredentials",
    "ListAccounts",
    "ListAccountRoles",
    "Logout",
    "GetCallerIdentity",
    "AssumeRole",
    "Federation",
)
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
GRANT_KEYS = {
    "authorization_code": "authorization_code",
    DEVICE_GRANT: "device_code",
    "refresh_token": "refresh_token",
}
_USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
_KEY_ALPHABET = string.ascii_uppercase + "234567"


@dataclass
class Registration:
    """A client registered with RegisterClient."""

    client_id: str
    client_secret: str
    name: str
    scopes: tuple[str, ...]
    grant_types: tuple[str, ...]
    redirect_uris: tuple[str, ...]
    issuer_url: str | None
    issued_at: int
    expires_at: int


@dataclass
class DeviceGrant:
    """A device authorization waiting for approval and polls."""

    client_id: str
    user_code: str
    start_url: str
    expires_at: float
    interval: int
    polls: int = 0
    last_poll: float | None = None
    decision: str | None = None
    consumed: bool = False


@dataclass
class AuthRequest:
    """A validated ``/authorize`` request (pending a click in manual mode)."""

    client_id: str
    redirect_uri: str
    challenge: str
    scopes: tuple[str, ...]
    state: str | None
    expires_at: float


@dataclass
class AuthCode:
    """An authorization code handed to the redirect URI."""

    client_id: str
    redirect_uri: str
    challenge: str
    scopes: tuple[str, ...]
    expires_at: float
    used: bool = False


@dataclass
class AccessToken:
    """An access token; ``session`` ties it to the sign-in that produced it."""

    client_id: str
    session: str
    expires_at: float
    revoked: bool = False


@dataclass
class RefreshToken:
    """A refresh token; ``used`` once rotated away."""

    client_id: str
    session: str
    scopes: tuple[str, ...]
    used: bool = False
    revoked: bool = False


@dataclass
class IssuedKey:
    """Role credentials handed out by GetRoleCredentials or AssumeRole, remembered for STS.

    ``session_name`` is the RoleSessionName of an AssumeRole session ("" for the portal's keys,
    whose sessions are named after the signed-in user).
    """

    account_id: str
    role_name: str
    session_token: str
    expires_at: int
    secret_access_key: str = ""
    session_name: str = ""


#: How many redirect URIs ``GET /_stats`` reports: enough for tests, bounded for a long run.
REDIRECT_URIS_KEPT = 100


@dataclass
class Stats:
    """Request counters, as ``GET /_stats`` reports them."""

    operations: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OPERATIONS, 0))
    create_token: dict[str, int] = field(default_factory=lambda: dict.fromkeys(GRANT_KEYS.values(), 0))
    refresh_token_reuse_rejected: int = 0
    injected: dict[str, int] = field(default_factory=lambda: {"fail": 0, "throttle": 0})
    #: The most API requests that were being answered at the same moment.
    in_flight_max: int = 0
    #: The redirect_uri of the last REDIRECT_URIS_KEPT ``/authorize`` requests accepted, oldest first
    #: (the port shows where a login listens).
    redirect_uris: list[str] = field(default_factory=list)

    def authorized(self, redirect_uri: str) -> None:
        """Note an accepted ``/authorize`` request's redirect_uri."""
        self.redirect_uris.append(redirect_uri)
        del self.redirect_uris[:-REDIRECT_URIS_KEPT]

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return {
            "operations": dict(self.operations),
            "create_token": dict(self.create_token),
            "refresh_token_reuse_rejected": self.refresh_token_reuse_rejected,
            "injected": dict(self.injected),
            "in_flight_max": self.in_flight_max,
            "redirect_uris": list(self.redirect_uris),
        }


class State:
    """The emulator's memory, shared by all request threads."""

    def __init__(self, settings: Settings, directory: Directory, seed: int | None = None) -> None:
        """Start empty; ``seed`` makes fault injection and generated client ids repeatable."""
        self.lock = threading.RLock()
        self.settings = settings
        self.directory = directory
        self.stats = Stats()
        self.page_key = secrets.token_bytes(32)
        self._ids = seeded("ids", seed)
        self._faults = seeded("faults", seed)
        self.registrations: dict[str, Registration] = {}
        self.devices: dict[str, DeviceGrant] = {}
        self.user_codes: dict[str, str] = {}
        self.pending: dict[str, AuthRequest] = {}
        self.codes: dict[str, AuthCode] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.keys: dict[str, IssuedKey] = {}
        #: Sign-in tokens of the federation endpoint: token -> (access key id, valid until).
        self.signin_tokens: dict[str, tuple[str, float]] = {}
        self.in_flight = 0
        #: Requests being answered right now, by operation (tests time signals to them).
        self.in_flight_now: dict[str, int] = {}

    @staticmethod
    def now() -> float:
        """Current time, epoch seconds."""
        return time.time()

    def enter(self, operation: str | None = None) -> None:
        """An API request starts being answered (for ``in_flight_max`` and ``in_flight_now``)."""
        with self.lock:
            self.in_flight += 1
            self.stats.in_flight_max = max(self.stats.in_flight_max, self.in_flight)
            if operation:
                self.in_flight_now[operation] = self.in_flight_now.get(operation, 0) + 1

    def leave(self, operation: str | None = None) -> None:
        """An API request has been answered."""
        with self.lock:
            self.in_flight -= 1
            if operation:
                self.in_flight_now[operation] -= 1

    def count(self, operation: str) -> None:
        """Count one received request for an operation."""
        with self.lock:
            self.stats.operations[operation] += 1

    def draw_fault(self) -> str | None:
        """Decide whether to inject a fault into this request: ``fail``, ``throttle`` or None."""
        with self.lock:
            kind = None
            if self.settings.fail_rate and self._faults.random() < self.settings.fail_rate:
                kind = "fail"
            elif self.settings.throttle_rate and self._faults.random() < self.settings.throttle_rate:
                kind = "throttle"
            if kind:
                self.stats.injected[kind] += 1
            return kind

    def new_id(self, length: int, alphabet: str = string.ascii_letters + string.digits) -> str:
        """A non-secret identifier (repeatable under ``--seed``)."""
        with self.lock:
            return "".join(self._ids.choice(alphabet) for _ in range(length))

    def new_user_code(self) -> str:
        """A fresh user code like ``BCDF-GHJK``."""
        while True:
            raw = "".join(secrets.choice(_USER_CODE_ALPHABET) for _ in range(8))
            if raw not in self.user_codes:
                return f"{raw[:4]}-{raw[4:]}"

    def issue_tokens(self, registration: Registration, scopes: tuple[str, ...], session: str) -> dict[str, Any]:
        """Mint an access token (and a refresh token when the client registered scopes)."""
        access = "aoa" + secrets.token_urlsafe(48)
        self.access_tokens[access] = AccessToken(registration.client_id, session, self.now() + self.settings.token_ttl)
        result: dict[str, Any] = {
            "accessToken": access,
            "tokenType": "Bearer",
            "expiresIn": self.settings.token_ttl,
        }
        if registration.scopes:
            refresh = "aor" + secrets.token_urlsafe(48)
            self.refresh_tokens[refresh] = RefreshToken(registration.client_id, session, scopes)
            result["refreshToken"] = refresh
        return result

    def issue_key(self, account_id: str, role_name: str, *, session_name: str = "",
                  lifetime: int | None = None) -> dict[str, Any]:
        """Mint role credentials and remember the key for STS (``lifetime`` defaults to ``cred_ttl``)."""
        key_id = "ASIA" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16))
        session_token = secrets.token_urlsafe(264)
        secret = secrets.token_urlsafe(30)[:40]
        expires_at = math.ceil(self.now()) + (self.settings.cred_ttl if lifetime is None else lifetime)
        self.keys[key_id] = IssuedKey(account_id, role_name, session_token, expires_at, secret, session_name)
        return {
            "accessKeyId": key_id,
            "secretAccessKey": secret,
            "sessionToken": session_token,
            "expiration": expires_at * 1000,
        }

    def revoke_session(self, session: str) -> None:
        """Revoke every access and refresh token that came from one sign-in."""
        for token in self.access_tokens.values():
            if token.session == session:
                token.revoked = True
        for refresh in self.refresh_tokens.values():
            if refresh.session == session:
                refresh.revoked = True

    def revoke_all(self) -> None:
        """Revoke every access and refresh token."""
        for token in self.access_tokens.values():
            token.revoked = True
        for refresh in self.refresh_tokens.values():
            refresh.revoked = True
