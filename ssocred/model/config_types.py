"""The values the AWS config model is made of: one sso-session, one profile, what a profile resolves to.

Pure data, read by ``ssocred.model.config``. Example: ``SsoTarget("corp", "111122223333", "Admin").role_name``
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ssocred.model import sso as model


def parse_scopes(value: str | None) -> tuple[str, ...]:
    """A comma list, items stripped, empties dropped: ``parse_scopes("a, b,") == ("a", "b")``."""
    if value is None:
        return ()
    return tuple(item for item in (part.strip() for part in value.split(",")) if item)


@dataclass(frozen=True)
class SsoSessionConfig:
    """One ``[sso-session NAME]``: ``SsoSessionConfig("corp", "https://d-1.awsapps.com/start", "us-east-1")``.

    ``start_url`` / ``region`` are ``""`` when the section lacks them.
    """

    name: str
    start_url: str
    region: str
    registration_scopes: tuple[str, ...] = ()
    scopes_configured: bool = False
    values: Mapping[str, str] = field(default_factory=dict)

    def effective_scopes(self) -> tuple[str, ...]:
        """The scopes to register: configured ones or ``("sso:account:access",)``."""
        return self.registration_scopes or model.DEFAULT_SCOPES


@dataclass(frozen=True)
class ProfileConfig:
    """One ``[profile NAME]`` or ``[default]``: ``ProfileConfig("dev", {"sso_session": "corp"})``."""

    name: str
    values: Mapping[str, str] = field(default_factory=dict)

    @property
    def sso_session(self) -> str | None:
        """``sso_session``, e.g. ``"corp"``."""
        return self.values.get("sso_session")

    @property
    def sso_start_url(self) -> str | None:
        """``sso_start_url`` (legacy profiles), e.g. ``"https://d-1.awsapps.com/start"``."""
        return self.values.get("sso_start_url")

    @property
    def sso_region(self) -> str | None:
        """``sso_region``, e.g. ``"us-east-1"``."""
        return self.values.get("sso_region")

    @property
    def sso_account_id(self) -> str | None:
        """``sso_account_id``, e.g. ``"111122223333"``."""
        return self.values.get("sso_account_id")

    @property
    def sso_role_name(self) -> str | None:
        """``sso_role_name``, e.g. ``"Admin"``."""
        return self.values.get("sso_role_name")

    @property
    def region(self) -> str | None:
        """``region``, e.g. ``"eu-west-1"``."""
        return self.values.get("region")

    @property
    def credential_process(self) -> str | None:
        """``credential_process``, e.g. ``"ssocred process --sso-session corp ..."``."""
        return self.values.get("credential_process")


@dataclass(frozen=True)
class SsoTarget:
    """What ssocred fetches for a profile: ``SsoTarget("corp", "111122223333", "Admin")``."""

    session: str
    account_id: str
    role_name: str


@dataclass(frozen=True)
class ResolvedSso:
    """The SSO settings a profile resolves to: ``ResolvedSso("corp", url, "us-east-1", scopes, False)``."""

    session_name: str | None
    start_url: str
    region: str
    scopes: tuple[str, ...]
    scopes_configured: bool
    account_id: str | None = None
    role_name: str | None = None

    @property
    def legacy(self) -> bool:
        """True for a profile with ``sso_start_url`` and no sso-session."""
        return self.session_name is None

    @property
    def cache_key(self) -> str:
        """The token cache key: the session name, else the start URL as written (``"corp"``)."""
        return self.start_url if self.session_name is None else self.session_name
