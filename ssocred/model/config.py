"""The AWS config file model: profiles and sso-sessions read and resolved the way botocore does.

Pure: ``ssocred.adapters.config_file.load`` reads the file. Example: ``parse(text).resolve_sso("dev").start_url``
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from ssocred.errors import ConfigError, UsageError
from ssocred.model import sso as model
from ssocred.model.config_syntax import (
    botocore_view,
    clean,
    parse_nested,
    read_sections,
    section_label,
    section_name,
)
from ssocred.model.config_types import ProfileConfig, ResolvedSso, SsoSessionConfig, SsoTarget, parse_scopes
from ssocred.process_args import Request, from_line, is_account_id

__all__ = [
    "AwsConfig",
    "ProfileConfig",
    "ResolvedSso",
    "SsoSessionConfig",
    "SsoTarget",
    "parse",
    "parse_nested",
    "parse_scopes",
    "region_problem",
]

#: ssocred's own profile keys for a target, checked before the credential_process line.
OWN_KEYS = {"session": "ssocred_session", "account": "ssocred_account_id", "role": "ssocred_role_name"}
#: Keys used last, when neither ssocred's keys nor the credential_process line name a part.
FALLBACK_KEYS = {"session": "sso_session", "account": "sso_account_id", "role": "sso_role_name"}
_PLACEHOLDERS = {
    "session": "<sso-session name>",
    "account": "<account id>",
    "role": "<role name>",
    "sso_start_url": "<start URL>",
    "sso_region": "<region>",
}
_PART_WORDS = {"session": "sso-session", "account": "account", "role": "role"}


@dataclass(frozen=True)
class AwsConfig:
    """A parsed config file: ``parse("[profile dev]\\nregion = eu-west-1\\n").profile("dev").region``."""

    path: str = "~/.aws/config"
    profiles: Mapping[str, ProfileConfig] = field(default_factory=dict)
    sso_sessions: Mapping[str, SsoSessionConfig] = field(default_factory=dict)
    #: ``[services NAME]`` sections, values raw (indented blocks: see ``parse_nested``).
    services: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    #: Headers of sections that are none of the above (botocore ignores them, e.g. ``[dev]``).
    other_sections: tuple[str, ...] = ()
    #: Why nothing could be read at ``path`` although something is there, e.g. ``"is a directory, not a file"``.
    unusable: str | None = None

    def profile(self, name: str) -> ProfileConfig:
        """The profile ``name``: ``cfg.profile("dev")``; ConfigError with close names if absent."""
        found = self.profiles.get(name)
        if found is not None:
            return found
        self._raise_unusable(f"profile '{clean(name)}' is not defined")
        fix = _choices(name, list(self.profiles), "profiles", f"add a [profile {clean(name)}] section to it")
        if name in self.other_sections and name != "default":
            fix = f"the config file needs [profile {clean(name)}], not [{clean(name)}]; rename the section"
        raise ConfigError(f"profile '{clean(name)}' is not defined in {self.path}", fix=fix)

    def sso_session(self, name: str) -> SsoSessionConfig:
        """The sso-session ``name``: ``cfg.sso_session("corp")``; ConfigError if absent."""
        found = self.sso_sessions.get(name)
        if found is not None:
            return found
        self._raise_unusable(f"sso-session '{clean(name)}' is not defined")
        fix = f"add an [sso-session {clean(name)}] section with sso_start_url and sso_region"
        fix = _choices(name, list(self.sso_sessions), "sso-sessions", fix)
        raise ConfigError(f"sso-session '{clean(name)}' is not defined in {self.path}", fix=fix)

    def _raise_unusable(self, what: str) -> None:
        """Name the real cause when the file could not be read: ``profile 'dev' is not defined: ... a directory``."""
        if self.unusable is not None:
            raise ConfigError(f"{what}: {self.path} {self.unusable}", fix=unusable_fix(self.path))

    def select(self, profile: str | None, sso_session: str | None, env_profile: str | None = None) -> ResolvedSso:
        """The SSO session a command acts on: ``--profile``, ``--sso-session``, ``$AWS_PROFILE`` or the only one.

        Example: ``cfg.select(None, None, env_profile=os.environ.get("AWS_PROFILE")).cache_key``
        """
        if sso_session:
            return self.resolve_session(sso_session)
        profile = profile or env_profile or None
        if profile:
            prof = self.profile(profile)
            if "ssocred_session" in prof.values or (prof.credential_process and not prof.sso_start_url):
                return self.resolve_session(self.ssocred_target(profile).session)
            return self.resolve_sso(profile)
        if len(self.sso_sessions) == 1:
            return self.resolve_session(next(iter(self.sso_sessions)))
        if not self.sso_sessions:
            raise ConfigError(f"no [sso-session] section in {self.path}",
                              fix="run: ssocred configure (it asks for the start URL and region and writes one)")
        names = ", ".join(sorted(self.sso_sessions))
        raise UsageError(f"{self.path} has several SSO sessions ({names})", fix="choose one with --sso-session NAME")

    def resolve_session(self, name: str) -> ResolvedSso:
        """Settings for ``--sso-session corp``: ``cfg.resolve_session("corp").region``."""
        session = self.sso_session(name)
        start_url, region = self._session_essentials(session, None)
        return ResolvedSso(name, start_url, region, session.effective_scopes(), session.scopes_configured)

    def resolve_sso(self, profile_name: str) -> ResolvedSso:
        """A profile's SSO settings, merged and checked as botocore does: ``cfg.resolve_sso("dev")``."""
        profile = self.profile(profile_name)
        values = profile.values
        who = f"profile '{clean(profile.name)}'"
        if "sso_session" in values:
            name = values["sso_session"]
            session = self.sso_sessions.get(name)
            if session is None:
                raise ConfigError(
                    f"{who} references sso-session '{clean(name)}' which is not defined in {self.path}",
                    fix=f"add an [sso-session {clean(name)}] section with sso_start_url and sso_region",
                )
            merged = dict(values)
            for key, val in session.values.items():
                if key in values and botocore_view(values[key]) != botocore_view(val):
                    raise ConfigError(
                        f"the value for {clean(key)} is inconsistent between {who} ({clean(values[key])})"
                        f" and sso-session '{clean(name)}' ({clean(val)}) in {self.path}",
                        fix="remove it from the profile",
                    )
                merged[key] = val
            start_url, region = self._session_essentials(session, profile)
            return ResolvedSso(
                name,
                start_url,
                region,
                session.effective_scopes(),
                session.scopes_configured,
                merged.get("sso_account_id"),
                merged.get("sso_role_name"),
            )
        if "sso_start_url" not in values:
            raise ConfigError(
                f"{who} in {self.path} has no SSO settings (sso_session or sso_start_url)",
                fix="add sso_session = <name> and an [sso-session <name>] section with sso_start_url and sso_region",
            )
        label = section_label("profile", profile.name)
        start_url, region = _require(values, f"{who} in {self.path}", label)
        # A legacy profile registers without scopes, like the AWS CLI's device flow.
        return ResolvedSso(
            None,
            start_url,
            region,
            model.DEFAULT_SCOPES,
            False,
            values.get("sso_account_id"),
            values.get("sso_role_name"),
        )

    def ssocred_target(self, profile_name: str) -> SsoTarget:
        """The session, account and role a profile asks ssocred for: ``cfg.ssocred_target("dev")``.

        Order per part: ssocred's own key, the credential_process line, then the sso_* key. A line
        running ``ssocred process --profile OTHER`` gives OTHER's target, as an SDK gets it. The line
        is read with the one grammar (``ssocred.process_args``): arguments ``ssocred process``
        refuses give a ConfigError with its exit code (2), so every reader fails as the SDK does.
        """
        return self._target(profile_name, ())

    def _target(self, profile_name: str, via: tuple[str, ...]) -> SsoTarget:
        profile = self.profile(profile_name)
        values = profile.values
        label = section_label("profile", profile.name)
        found = {part: values.get(key, "") for part, key in OWN_KEYS.items()}
        source = {part: key for part, key in OWN_KEYS.items() if found[part]}
        line = values.get("credential_process")
        if not all(found.values()) and line is not None:
            request = self._line_request(line, label)
            other = request.profile if request is not None else None
            if other is not None and other != profile.name:
                if other in via:
                    names = " and ".join(section_label("profile", name) for name in (*via, profile.name))
                    raise ConfigError(f"the credential_process lines of {names} in {self.path} name each other "
                                      "with --profile, so none of them names a target",
                                      fix=f"add ssocred_session, ssocred_account_id and ssocred_role_name to {label}")
                return self._target(other, (*via, profile.name))
            named = request.named() if request is not None else None
            for part, value in zip(("session", "account", "role"), named or (), strict=False):
                if not found[part]:
                    found[part], source[part] = value, "credential_process"
        for part, key in FALLBACK_KEYS.items():
            if not found[part] and values.get(key):
                found[part], source[part] = values[key], key
        missing = [part for part, value in found.items() if not value]
        if missing:
            words = _join([_PART_WORDS[part] for part in missing])
            keys = _join([f"{OWN_KEYS[part]} = {_PLACEHOLDERS[part]}" for part in missing])
            raise ConfigError(
                f"profile '{clean(profile.name)}' in {self.path} does not name the {words} for ssocred",
                fix=f"add {keys} to {label}",
            )
        if not is_account_id(found["account"]):
            raise ConfigError(
                f"{source['account']} = {clean(found['account'])} in {label} of {self.path} is not an AWS account id",
                fix="an account id is 12 digits, e.g. 111122223333",
            )
        return SsoTarget(found["session"], found["account"], found["role"])

    def _line_request(self, line: str, label: str) -> Request | None:
        """What a profile's credential_process line asks ``ssocred process`` for; None if it runs another program."""
        from ssocred.errors import EXIT_USAGE, UsageError

        try:
            return from_line(line)
        except ValueError as exc:
            raise ConfigError(
                f"credential_process in {label} of {self.path} cannot be read ({clean(str(exc))})",
                fix="fix its quoting",
            ) from None
        except UsageError as exc:
            error = ConfigError(f"credential_process in {label} of {self.path}: {exc.message}", fix=exc.fix)
            error.exit_code = EXIT_USAGE  # the SDK running this line gets a usage error: so does every reader
            raise error from None

    def _session_essentials(
        self, session: SsoSessionConfig, profile: ProfileConfig | None
    ) -> tuple[str, str]:
        # botocore's token provider reads these from the sso-session itself, never from the profile.
        values = {"sso_start_url": session.start_url, "sso_region": session.region, **session.values}
        who = f"sso-session '{clean(session.name)}' in {self.path}"
        return _require(values, who, section_label("sso-session", session.name), profile)


def _require(
    values: Mapping[str, str], who: str, label: str, profile: ProfileConfig | None = None
) -> tuple[str, str]:
    """sso_start_url and sso_region, or a ConfigError naming what is missing, empty or multi-line."""
    keys = ("sso_start_url", "sso_region")
    bad = [key for key in keys if not values.get(key) or "\n" in values[key]]
    if not bad:
        return values[keys[0]], values[keys[1]]
    for key in bad:
        if values.get(key):
            raise ConfigError(
                f"{who} has a multi-line {key} ({clean(values[key])})",
                fix=f"write {key} = {_PLACEHOLDERS[key]} on one line in {label}",
            )
    missing = " and ".join(bad)
    fix = f"add {' and '.join(f'{key} = {_PLACEHOLDERS[key]}' for key in bad)} to {label}"
    if profile is not None and all(profile.values.get(key) for key in bad):
        fix = f"move {missing} from {section_label('profile', profile.name)} to {label}"
    raise ConfigError(f"{who} is missing {missing}", fix=fix)


def _join(items: list[str]) -> str:
    """``_join(["a", "b", "c"]) == "a, b and c"``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _choices(name: str, names: list[str], what: str, fallback: str) -> str:
    """``did you mean 'dev'? defined profiles: dev, prod``, or ``fallback`` when there are none."""
    if not names:
        return fallback
    import difflib

    shown = ", ".join(clean(n, 40) for n in names[:10]) + (", …" if len(names) > 10 else "")
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean '{clean(close[0])}'? " if close else ""
    return f"{hint}defined {what}: {shown}"


def parse(text: str, path: str = "~/.aws/config") -> AwsConfig:
    """Parse config text like botocore: ``parse("[sso-session corp]\\nsso_region = us-east-1\\n")``.

    Raises only ConfigError. ``path`` is used as given, in messages.
    """
    profiles: dict[str, ProfileConfig] = {}
    sessions: dict[str, SsoSessionConfig] = {}
    services: dict[str, Mapping[str, str]] = {}
    others: list[str] = []
    for header, values in read_sections(text, path).items():
        # Same order and prefix tests as botocore's build_profile_map; a later section wins.
        name = section_name(header)
        if header.startswith("profile"):
            if name is not None:
                profiles[name] = ProfileConfig(name, values)
        elif header.startswith("sso-session"):
            if name is not None:
                sessions[name] = _session(name, values)
        elif header.startswith("services"):
            if name is not None:
                services[name] = values
        elif header == "default":
            profiles[header] = ProfileConfig(header, values)
        else:
            others.append(header)
    return AwsConfig(path, profiles, sessions, services, tuple(others))


def _session(name: str, values: dict[str, str]) -> SsoSessionConfig:
    raw_scopes = values.get("sso_registration_scopes")
    return SsoSessionConfig(
        name=name,
        start_url=values.get("sso_start_url", ""),
        region=values.get("sso_region", ""),
        registration_scopes=parse_scopes(raw_scopes),
        scopes_configured=raw_scopes is not None,
        values=values,
    )


#: ``AwsConfig.unusable`` of a config path that is a directory.
DIRECTORY = "is a directory, not a file"


def unusable_fix(shown: str) -> str:
    """How to repair a config path that holds no file: ``unusable_fix("~/.aws/config")``."""
    return f"move {shown} out of the way and run: ssocred configure (or point AWS_CONFIG_FILE at your config file)"


#: What ``configure`` accepts as a region name: ``us-east-1``, ``us-gov-west-1``, ``cn-north-1``.
REGION_NAME = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")


def region_problem(cfg: AwsConfig, target: ResolvedSso, profile: str | None) -> ConfigError | None:
    """A ConfigError when ``sso_region`` is no region name (botocore fails late and vaguely), else None.

    Example: ``region_problem(cfg, cfg.resolve_session("corp"), None)`` for ``sso_region = us-east``.
    """
    if REGION_NAME.match(target.region):
        return None
    if target.legacy:
        label, who = section_label("profile", profile or ""), f"profile '{clean(profile or '')}'"
    else:
        label, who = section_label("sso-session", target.cache_key), f"sso-session '{clean(target.cache_key)}'"
    return ConfigError(f"{who} in {cfg.path} has sso_region = {clean(target.region)}, which is not a region name",
                       fix=f"set sso_region = <region> in {label} to the region of your IAM Identity Center "
                       "(e.g. us-east-1, eu-west-1)")
