"""Role chaining: a profile with ``role_arn`` and ``source_profile`` whose source is an ssocred profile.

Pure. A profile resolves to an ``SsoTarget`` (a role of an SSO session) or to a ``Chain``: that
SSO role, then one AssumeRole per ``Link`` (a source profile may itself be chained). Cached
credentials of a chain are keyed like role credentials, ``(session, account, "<role>~<digest>")``:
the SSO session at its root owns them (logout removes them), and the digest stands for every
step, so no two chains share an item. ``~`` never occurs in an IAM role name.

Example: ``resolve(cfg, "deploy").key() == ("corp", "222233334444", "Deploy~3f2a9c0d1e4b")``
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ssocred.errors import ConfigError
from ssocred.model.config import OWN_KEYS, AwsConfig, SsoTarget
from ssocred.model.config_syntax import clean, section_label
from ssocred.process_args import from_line

#: RoleSessionName when the profile sets none (botocore makes one up per call, which no cache could share).
DEFAULT_SESSION_NAME = "ssocred"
#: The source of every chain is an IAM Identity Center role session, so STS caps each step at one hour.
CHAINED_MAX_DURATION = 3600
MIN_DURATION = 900
#: Separates the role name from the chain's digest in a cache key.
MARK = "~"
_ROLE_ARN = re.compile(r"arn:aws(?:-cn|-us-gov|-iso|-iso-b)?:iam::(\d{12}):role/(?:[\x21-\x7e]+/)?([\w+=,.@-]{1,64})")
_SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}")
_EXTERNAL_ID = re.compile(r"[\w+=,.@:/-]{2,1224}")
_GLOBAL_REGION = "us-east-1"


@dataclass(frozen=True)
class Link:
    """One AssumeRole step: ``Link("deploy", "arn:aws:iam::222233334444:role/Deploy", "ssocred", region="eu-west-1")``.

    ``profile`` is the profile that asks for it (its ``[services]`` endpoints apply); ``region``
    is where STS is called: the profile's, else its source's, else the SSO region.
    """

    profile: str
    role_arn: str
    session_name: str = DEFAULT_SESSION_NAME
    external_id: str | None = None
    duration: int | None = None
    region: str = _GLOBAL_REGION

    @property
    def account_id(self) -> str:
        """The account of the role: ``"222233334444"``."""
        return _arn_parts(self.role_arn)[0]

    @property
    def role_name(self) -> str:
        """The role's name without its path: ``"Deploy"`` for ``...:role/ops/Deploy``."""
        return _arn_parts(self.role_arn)[1]


@dataclass(frozen=True)
class Chain:
    """An SSO role and the AssumeRole steps after it: ``Chain(SsoTarget("corp", "1111…", "Dev"), (link,))``."""

    source: SsoTarget
    links: tuple[Link, ...]

    @property
    def last(self) -> Link:
        """The step whose credentials the chain gives: ``chain.last.role_arn``."""
        return self.links[-1]

    def parent(self) -> Target:
        """What signs the last step: the SSO role for one step, else the chain one step shorter.

        Example: ``Chain(src, (link,)).parent() == src``
        """
        return self.source if len(self.links) == 1 else Chain(self.source, self.links[:-1])

    def key(self) -> tuple[str, str, str]:
        """The cache key: ``("corp", "222233334444", "Deploy~3f2a9c0d1e4b")``."""
        import hashlib  # deferred: loading OpenSSL costs the start-up of every caller

        steps = [[link.role_arn, link.session_name, link.external_id, link.duration] for link in self.links]
        text = json.dumps([self.source.session, self.source.account_id, self.source.role_name, steps])
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        return (self.source.session, self.last.account_id, f"{self.last.role_name}{MARK}{digest}")


#: What a profile resolves to: an SSO role, or a chain that starts at one.
Target = SsoTarget | Chain


def target_key(target: Target) -> tuple[str, str, str]:
    """The cache key of either kind: ``target_key(SsoTarget("corp", "1111…", "Dev")) == ("corp", "1111…", "Dev")``."""
    if isinstance(target, Chain):
        return target.key()
    return (target.session, target.account_id, target.role_name)


def is_chained(key: tuple[str, str, str]) -> bool:
    """Whether a cache key belongs to a chain: ``is_chained(("corp", "2222…", "Deploy~3f2a…"))``."""
    return MARK in key[2]


def role_shown(key: tuple[str, str, str]) -> str:
    """A cache key's role name without a chain's digest: ``role_shown((s, a, "Deploy~3f2a…")) == "Deploy"``."""
    return key[2].partition(MARK)[0]


def resolve(cfg: AwsConfig, profile: str) -> Target:
    """The target of ``profile`` as ssocred serves it: ``resolve(cfg, "deploy").last.role_arn``.

    A profile with ``role_arn`` is a chain (``source_profile`` required, an ssocred profile or a
    chain itself); a profile whose ``credential_process`` line is ``ssocred process --profile
    OTHER`` serves OTHER's target; any other profile is an SSO role (``AwsConfig.ssocred_target``).
    """
    return _resolve(cfg, profile, ())


def _resolve(cfg: AwsConfig, name: str, via: tuple[str, ...]) -> Target:
    if name in via:
        names = " -> ".join(section_label("profile", n) for n in (*via, name))
        raise ConfigError(f"the profiles in {cfg.path} form a cycle: {names}",
                          fix="make the last source_profile an ssocred profile (one with credential_process = "
                              "ssocred process ...)")
    values = cfg.profile(name).values
    if "role_arn" not in values:
        other = _named_profile(values)
        if other is not None and other != name and other in cfg.profiles and "role_arn" in cfg.profiles[other].values:
            return _resolve(cfg, other, (*via, name))
        return cfg.ssocred_target(name)
    return _chain(cfg, name, values, via)


def _named_profile(values: Any) -> str | None:
    """OTHER of a ``credential_process = ssocred process --profile OTHER`` line, when ssocred's own keys are absent."""
    line = values.get("credential_process")
    if line is None or any(key in values for key in OWN_KEYS.values()):
        return None
    try:
        request = from_line(line)
    except Exception:  # the target lookup reports a line it cannot read, with its own message
        return None
    return request.profile if request is not None else None


def _chain(cfg: AwsConfig, name: str, values: Any, via: tuple[str, ...]) -> Chain:
    label = section_label("profile", name)
    where = f"{label} of {cfg.path}"
    if values.get("mfa_serial"):
        raise ConfigError(f"{where} sets mfa_serial: ssocred cannot ask for an MFA code inside credential_process",
                          fix="remove mfa_serial, or leave this role to the AWS CLI or SDK (a profile with role_arn "
                              "and source_profile and no credential_process line; see \"Chained roles\" in the README)")
    if values.get("credential_source"):
        raise ConfigError(f"{where} sets credential_source: ssocred chains roles from source_profile only",
                          fix="use source_profile = <an ssocred profile>")
    arn = values["role_arn"]
    if _ROLE_ARN.fullmatch(arn) is None:
        raise ConfigError(f"role_arn = {clean(arn)} in {where} is not a role ARN",
                          fix="write it as arn:aws:iam::222233334444:role/NAME")
    source = values.get("source_profile")
    if not source:
        raise ConfigError(f"{where} has role_arn but no source_profile",
                          fix=f"add source_profile = <an ssocred profile> to {label}")
    try:
        parent = _resolve(cfg, source, (*via, name))
    except ConfigError as exc:
        if source in cfg.profiles and ("role_arn" in cfg.profiles[source].values or "cycle" in exc.message):
            raise  # the error of a step further down names its own profile
        what = "is not an ssocred profile" if source in cfg.profiles else "names no profile"
        error = ConfigError(f"source_profile = {clean(source)} in {where} {what}: {exc.message}", fix=exc.fix)
        error.exit_code = exc.exit_code
        raise error from None
    link = Link(name, arn, _session_name(values, where), _external_id(values, where), _duration(values, where),
                values.get("region") or _region(cfg, source, parent))
    if isinstance(parent, Chain):
        return Chain(parent.source, (*parent.links, link))
    return Chain(parent, (link,))


def _region(cfg: AwsConfig, source: str, parent: Target) -> str:
    """The source's region: its own, its chain's, else the SSO region of the session at the root."""
    if isinstance(parent, Chain):
        return parent.last.region
    own = cfg.profile(source).values.get("region")
    if own:
        return own
    session = cfg.sso_sessions.get(parent.session)
    return session.region if session is not None and session.region else _GLOBAL_REGION


def _session_name(values: Any, where: str) -> str:
    name = values.get("role_session_name") or DEFAULT_SESSION_NAME
    if _SESSION_NAME.fullmatch(name) is None:
        raise ConfigError(f"role_session_name = {clean(name)} in {where} is not a session name STS accepts",
                          fix="use 2 to 64 letters, digits and any of + = , . @ _ -")
    return str(name)


def _external_id(values: Any, where: str) -> str | None:
    found = values.get("external_id")
    if found is None:
        return None
    if _EXTERNAL_ID.fullmatch(found) is None:
        raise ConfigError(f"external_id in {where} is not an external id STS accepts",
                          fix="use 2 to 1224 letters, digits and any of + = , . @ : / _ -")
    return str(found)


def _duration(values: Any, where: str) -> int | None:
    raw = values.get("duration_seconds")
    if raw is None:
        return None
    text = str(raw).strip()
    if not text.isdigit() or not MIN_DURATION <= int(text) <= CHAINED_MAX_DURATION:
        raise ConfigError(f"duration_seconds = {clean(text)} in {where} is outside {MIN_DURATION} to "
                          f"{CHAINED_MAX_DURATION}: STS allows at most one hour when a role session (here the "
                          "IAM Identity Center role) assumes a role",
                          fix=f"set duration_seconds between {MIN_DURATION} and {CHAINED_MAX_DURATION}, or remove it")
    return int(text)


def _arn_parts(arn: str) -> tuple[str, str]:
    match = _ROLE_ARN.fullmatch(arn)
    if match is None:
        raise ValueError(f"not a role ARN: {arn!r}")
    return match.group(1), match.group(2)


def chain_to_dict(chain: Chain) -> dict[str, Any]:
    """A JSON-ready dict of a chain, kept with its credentials so the daemon can fetch them again.

    Example: ``chain_to_dict(chain)["links"][0]["roleArn"] == "arn:aws:iam::222233334444:role/Deploy"``
    """
    return {
        "source": [chain.source.session, chain.source.account_id, chain.source.role_name],
        "links": [{"profile": link.profile, "roleArn": link.role_arn, "sessionName": link.session_name,
                   "externalId": link.external_id, "duration": link.duration, "region": link.region}
                  for link in chain.links],
    }


def chain_from_dict(data: dict[str, Any]) -> Chain:
    """Inverse of ``chain_to_dict``: ``chain_from_dict(chain_to_dict(c)) == c``; KeyError/ValueError if malformed."""
    session, account, role = (str(part) for part in data["source"])
    links = tuple(
        Link(str(raw["profile"]), str(raw["roleArn"]), str(raw["sessionName"]),
             None if raw.get("externalId") is None else str(raw["externalId"]),
             None if raw.get("duration") is None else int(raw["duration"]), str(raw["region"]))
        for raw in data["links"]
    )
    if not links:
        raise ValueError("a chain without steps")
    _arn_parts(links[-1].role_arn)
    return Chain(SsoTarget(session, account, role), links)
