"""What every ``ssocred doctor`` check shares: the verdict (``Check``) and what earlier checks found (``Context``).

Checks run in order on one shared ``Context``; a later check reads what an earlier one found
(the resolved session, the stored token, whether the portal answered). No check prints or
returns a secret, and none deletes stored data.
Example: ``ctx = Context("dev", None); Check("token", FAIL, "not logged in", ctx.login_fix())``
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ssocred.model.sso import login_command

if TYPE_CHECKING:
    from ssocred.adapters.store import Store
    from ssocred.model.chain import Chain
    from ssocred.model.config import AwsConfig, ResolvedSso
    from ssocred.model.sso import Token

#: The four verdicts, e.g. ``Check("daemon", WARN, "not running", "run: ssocred service install")``.
PASS, WARN, FAIL, SKIP = "pass", "warn", "fail", "skip"
#: botocore's SSO provider takes over a profile with either key; the ssocred part each one names.
NATIVE_KEYS = {"sso_account_id": "account", "sso_role_name": "role"}


@dataclass(frozen=True)
class Check:
    """One check's verdict: ``Check("token", "fail", "not logged in", "run: ssocred login")``."""

    id: str
    status: str
    summary: str
    fix: str | None = None
    #: The exit code this failure stands for when it is not the check's usual one (not in the JSON).
    exit_code: int | None = None

    def as_json(self) -> dict[str, Any]:
        """The JSON object: ``{"id": "token", "status": "fail", "summary": "...", "fix": "..."}``."""
        return {"id": self.id, "status": self.status, "summary": self.summary, "fix": self.fix}


@dataclass
class Context:
    """What the checks learn as they go: ``Context("dev", None)``, then ``config(ctx)`` sets ``ctx.target``."""

    profile: str | None
    session: str | None
    cfg: AwsConfig | None = None
    target: ResolvedSso | None = None
    account: str | None = None
    role: str | None = None
    store: Store | None = None
    keyring_ok: bool = False
    stored: Token | None = None
    #: The token the portal checks may send: present and not expired.
    token: Token | None = None
    ca_ok: bool = True
    endpoint_ok: bool = False
    #: A chained profile's chain: the checks look at its SSO source, ``access`` also at the AssumeRole.
    chain: Chain | None = None
    #: A daemon forwarded to this host (``ssocred forward``): its socket, which stands in for the keyring.
    forwarded: str | None = None
    results: dict[str, Check] = field(default_factory=dict)

    @property
    def key(self) -> str | None:
        """The store name of the selected session: ``"corp"``, a legacy start URL, or None."""
        return self.target.cache_key if self.target else None

    def selector(self) -> str:
        """The command-line selector of this session, e.g. ``--sso-session corp``."""
        if self.target is not None and self.target.legacy and self.profile:
            return f"--profile {shlex.quote(self.profile)}"
        return f"--sso-session {shlex.quote(self.key or '<name>')}"

    def login_fix(self) -> str:
        """``run: ssocred login --sso-session corp`` (through the profile for a legacy session)."""
        if self.target is not None and self.target.legacy and self.profile:
            return f"run: ssocred login {self.selector()}"
        return f"run: {login_command(self.key or '<name>')}"
