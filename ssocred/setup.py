"""Setting up: list accounts and roles, write profiles (one or all), interactive configure, whoami.

Example: ``populate(argparse.Namespace(sso_session="corp", template="{account_name}.{role_name}", ...))``
"""

from __future__ import annotations

import argparse
import os
import shlex
from typing import TYPE_CHECKING, Any

from ssocred.configparse import clean, section_label
from ssocred.errors import (
    EXIT_ACCESS_DENIED,
    EXIT_CONFIG,
    EXIT_INTERRUPTED,
    EXIT_LOGIN_REQUIRED,
    EXIT_SERVICE,
    EXIT_STORE,
    EXIT_USAGE,
    ConfigError,
    LoginRequired,
    ServiceError,
    SsocredError,
    UsageError,
)
from ssocred.render import Report

if TYPE_CHECKING:
    from ssocred.config import AwsConfig, ResolvedSso
    from ssocred.walk import Walk


def _session(profile: str | None, sso_session: str | None) -> ResolvedSso:
    from ssocred import config
    from ssocred.commands import resolve

    return resolve(config.load(), profile, sso_session)


def _walk(session: str, args: argparse.Namespace) -> Walk:
    from ssocred.store import Store
    from ssocred.walk import walk

    return walk(Store(), session, max_workers=args.max_workers, rate=args.rate)


def _account_rows(result: Walk) -> list[dict[str, Any]]:
    return [
        {"account_id": a.account.account_id, "name": a.account.name, "email": a.account.email,
         "roles": list(a.roles)}
        for a in result.accounts
    ]


def accounts(args: argparse.Namespace) -> Report:
    """``ssocred accounts``: every account of the session and the roles the user has in it."""
    target = _session(args.profile, args.sso_session)
    result = _walk(target.cache_key, args)
    return Report("accounts", {"session": target.cache_key, "accounts": _account_rows(result)})


def command_word() -> str:
    """How generated profiles start ssocred: ``"ssocred"`` when PATH finds this one, else its absolute path."""
    import shlex
    import shutil

    from ssocred.paths import ssocred_command

    cmd = ssocred_command()
    found = shutil.which("ssocred")
    if len(cmd) == 1 and found and os.path.realpath(found) == os.path.realpath(cmd[0]):
        return "ssocred"
    return " ".join(shlex.quote(c) for c in cmd)


def _session_name(target: ResolvedSso) -> str:
    if target.legacy:
        raise ConfigError(
            f"'{target.cache_key}' is a legacy SSO profile (sso_start_url in the profile, no [sso-session])",
            fix="add an [sso-session NAME] section (ssocred configure writes one) and use --sso-session NAME",
        )
    return target.cache_key


def write_profiles(session: str, result: Walk, *, template: str, region: str | None, output: str | None,
                   prune: bool, dry_run: bool) -> dict[str, Any]:
    """Write one managed profile per account × role of ``result``; returns what changed (and the diff)."""
    from ssocred import configedit
    from ssocred.config import display_path
    from ssocred.naming import Target, assign_names, profile_values

    targets = [Target(session, a.account.account_id, a.account.name, role, a.account.email)
               for a in result.accounts for role in a.roles]
    names = assign_names(template, targets, region)
    command = command_word()
    desired = {n: (t, profile_values(command, t, region=region, output=output)) for n, t in names.items()}
    path = configedit.config_path()
    old, new, changes = configedit.edit(
        lambda text, shown: configedit.populate_text(text, shown, session, desired, prune=prune),
        dry_run=dry_run, path=path,
    )
    shown = display_path(path)
    return {
        "session": session,
        "config": shown,
        "dry_run": dry_run,
        "changed": old != new,
        "diff": configedit.diff(old, new, shown) if dry_run else None,
        "accounts": len(result.accounts),
        "profiles": len(desired),
        "added": changes.added,
        "updated": changes.updated,
        "renamed": [{"from": a, "to": b} for a, b in changes.renamed],
        "removed": changes.removed,
        "unchanged": len(changes.unchanged),
        "skipped": changes.skipped,
    }


def populate(args: argparse.Namespace) -> Report:
    """``ssocred configure populate``: a managed profile for every account × role."""
    from ssocred.naming import check_template

    try:
        check_template(args.template)
    except ValueError as exc:
        raise UsageError(str(exc), fix="e.g. --template '{account_name}.{role_name}'") from None
    if args.region:
        from ssocred.configure import check_region

        problem = check_region(args.region)
        if problem:
            raise UsageError(f"--region: {problem}", fix="e.g. --region eu-west-1")
    target = _session(None, args.sso_session)
    session = _session_name(target)
    result = _walk(session, args)
    data = write_profiles(session, result, template=args.template, region=args.region or target.region,
                          output=args.output, prune=args.prune, dry_run=args.dry_run)
    return Report("populate", data)


def configure(args: argparse.Namespace) -> Report:
    """``ssocred configure``: the interactive set-up (every question has a flag)."""
    from ssocred.configure import run

    return run(args)


def whoami(args: argparse.Namespace) -> Report:
    """``ssocred whoami``: STS GetCallerIdentity with the profile's credentials, as every SDK gets them.

    botocore picks the credential provider, as in every SDK; ssocred reads the config files first
    (a syntax fault is one line) and starts a credential_process itself (``CredentialProcess``),
    so that a command missing from PATH or a helper that fails is one line with its exit code.
    Example: ``whoami(argparse.Namespace(profile="dev")).data["account"] == "111122223333"``
    """
    import boto3.session
    import botocore.config
    import botocore.exceptions as bex

    from ssocred import awsclient

    profile = args.profile or os.environ.get("AWS_PROFILE") or None
    cfg = _read_config_files()
    try:
        session = boto3.session.Session(profile_name=profile)
    except bex.ProfileNotFound:
        cfg.profile(profile or "default")  # raises, naming close matches or why the file holds none
        raise ConfigError(f"profile '{clean(profile or '')}' is not defined",
                          fix="check the name; ssocred doctor --profile NAME explains what is wrong") from None
    helper = CredentialProcess(profile)
    helper.install(session)
    retries = botocore.config.Config(retries={"mode": "standard", "max_attempts": 5})
    endpoint = "STS"
    try:
        # Creating the client already resolves the credentials (and runs credential_process).
        sts = session.client("sts", region_name=session.region_name or "us-east-1", config=retries)
        endpoint = str(sts.meta.endpoint_url)
        ident = sts.get_caller_identity()
    except bex.ClientError as exc:
        raise ServiceError(f"STS GetCallerIdentity failed: {awsclient.error_code(exc)}: "
                           f"{awsclient.service_message(exc)}") from None
    except (bex.BotoCoreError, ValueError) as exc:
        if awsclient.is_network_error(exc):
            raise awsclient.network_error(exc, endpoint) from None
        raise _credentials_error(exc, profile) from None
    creds = session.get_credentials()
    return Report("whoami", {
        "profile": profile,
        "account": ident["Account"],
        "arn": ident["Arn"],
        "user_id": ident["UserId"],
        "credential_source": getattr(creds, "method", None),
    })


def _read_config_files() -> AwsConfig:
    """The config, read as ssocred reads it, after the shared credentials file was checked the same way.

    botocore reads both with the same parser; a fault in either is a ConfigError naming its line.
    """
    from pathlib import Path

    from ssocred import config

    credentials = os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials"
    config.load(Path(os.path.expanduser(os.path.expandvars(credentials))))
    return config.load()


def _credentials_error(exc: Exception, profile: str | None) -> SsocredError:
    """One line for a botocore failure while resolving credentials (never its traceback)."""
    import botocore.exceptions as bex

    from ssocred.logs import Redactor

    who = _who(profile)
    doctor = f"run: ssocred doctor{' --profile ' + shlex.quote(profile) if profile else ''}"
    reason = clean(Redactor().redact(str(exc)), 200)
    if isinstance(exc, bex.NoCredentialsError):
        return ConfigError(f"no credentials for {who}",
                           fix="pass --profile with a profile that has credentials (ssocred configure writes one)")
    if isinstance(exc, bex.CredentialRetrievalError):
        reason = reason.removeprefix("Error when retrieving credentials from custom-process: ")
        return ServiceError(f"credentials for {who} failed: {reason}", fix=doctor)
    if isinstance(exc, (bex.SSOError, bex.SSOTokenLoadError, bex.UnauthorizedSSOTokenError,
                        bex.TokenRetrievalError)):
        return LoginRequired(f"{who} uses botocore's own SSO provider, which failed: {reason}", fix=doctor)
    if isinstance(exc, (ValueError, bex.ProfileNotFound, bex.InvalidConfigError, bex.PartialCredentialsError,
                        bex.NoRegionError, bex.InvalidRegionError, bex.ConfigParseError)):
        return ConfigError(f"the configuration of {who} is not usable: {reason}", fix=doctor)
    return ServiceError(f"credentials for {who} could not be resolved: {reason}", fix=doctor)


class CredentialProcess:
    """Starts a profile's credential_process for botocore, exactly as botocore's ``ProcessProvider`` would.

    A command that would not start is a ConfigError naming the fix; a command that fails passes its
    exit code and its line on: ssocred's own one line comes through unchanged (never doubled).
    Example: ``CredentialProcess("dev").install(boto3.session.Session(profile_name="dev"))``
    """

    def __init__(self, profile: str | None) -> None:
        self.profile = profile
        self.label = section_label("profile", profile or "default")

    def install(self, session: Any) -> None:
        """Take the place of ``subprocess.Popen`` in the session's credential_process provider."""
        try:
            provider = session._session.get_component("credential_provider").get_provider("custom-process")
        except Exception:  # a botocore without these parts: its own provider runs, errors are mapped after
            return
        if provider is not None and hasattr(provider, "_popen"):
            provider._popen = self

    def __call__(self, argv: list[str], **_: Any) -> _Finished:
        """Run ``argv`` (already split as botocore splits the line); what botocore's ``Popen`` call gets back."""
        import json
        import subprocess

        from ssocred.checks import executable_problem

        problem = executable_problem(argv, self.label)
        if problem is not None:
            raise problem
        try:
            done = subprocess.run(argv, capture_output=True, check=False)
        except OSError as exc:
            raise ConfigError(f"credential_process in {self.label} cannot be started "
                              f"({exc.strerror or type(exc).__name__})",
                              fix=f"run: ssocred doctor --profile {shlex.quote(self.profile or 'default')}") from None
        if done.returncode != 0:
            raise self.failure(argv, done.returncode, done.stderr)
        try:
            json.loads(done.stdout)
        except ValueError:
            raise ServiceError(f"the credential_process of {self.label} printed something that is not JSON",
                               fix=f"run: ssocred doctor --profile {shlex.quote(self.profile or 'default')}") from None
        return _Finished(done.stdout)

    def failure(self, argv: list[str], code: int, stderr: bytes) -> SsocredError:
        """The error for a credential_process that exited with ``code``: ssocred's own, or one naming it."""
        from ssocred.checks import runs_ssocred
        from ssocred.errors import from_reply

        lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
        said = next((line for line in lines if not line.startswith("ssocred: warning:")), "")
        if runs_ssocred(shlex.join(argv)) and said.startswith("ssocred: ") and code in _SSOCRED_CODES:
            return from_reply(code, clean(said.removeprefix("ssocred: "), 1000))
        from ssocred.logs import Redactor

        how = f"was ended by signal {-code}" if code < 0 else f"failed (exit status {code})"
        shown = clean(Redactor().redact(said), 200) if said else "nothing on stderr"
        return ServiceError(f"the credential_process of {self.label} {how}: {shown}",
                            fix=f"run: ssocred doctor --profile {shlex.quote(self.profile or 'default')}")


#: The exit codes ``ssocred process`` documents for a failure.
_SSOCRED_CODES = frozenset({EXIT_LOGIN_REQUIRED, EXIT_USAGE, EXIT_CONFIG, EXIT_ACCESS_DENIED, EXIT_SERVICE,
                            EXIT_STORE, EXIT_INTERRUPTED})


class _Finished:
    """A credential process that has ended well, shaped as botocore reads a ``Popen``: ``communicate()``."""

    returncode = 0

    def __init__(self, stdout: bytes) -> None:
        self._stdout = stdout

    def communicate(self) -> tuple[bytes, bytes]:
        """``(stdout, stderr)``; stderr of a successful helper is ignored, as botocore ignores it."""
        return self._stdout, b""


def _who(profile: str | None) -> str:
    return f"profile '{clean(profile)}'" if profile else "the default profile"
