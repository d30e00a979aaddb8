"""Setting up: list accounts and roles, write profiles (one or all), interactive configure, whoami.

Example: ``populate(argparse.Namespace(sso_session="corp", template="{account_name}.{role_name}", ...))``
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

from ssocred.errors import ConfigError, ServiceError, UsageError
from ssocred.render import Report

if TYPE_CHECKING:
    from ssocred.config import ResolvedSso
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
    """``ssocred whoami``: STS GetCallerIdentity with the profile's credentials, as every SDK gets them."""
    import boto3.session
    import botocore.config
    import botocore.exceptions as bex

    from ssocred import awsclient
    from ssocred.configparse import clean

    profile = args.profile or os.environ.get("AWS_PROFILE") or None
    try:
        session = boto3.session.Session(profile_name=profile)
    except bex.ProfileNotFound:
        raise ConfigError(f"profile '{clean(profile or '')}' is not defined",
                          fix="check the name; ssocred doctor --profile NAME explains what is wrong") from None
    retries = botocore.config.Config(retries={"mode": "standard", "max_attempts": 5})
    endpoint = "STS"
    try:
        # Creating the client already resolves the credentials (and runs credential_process).
        sts = session.client("sts", region_name=session.region_name or "us-east-1", config=retries)
        endpoint = str(sts.meta.endpoint_url)
        ident = sts.get_caller_identity()
    except bex.NoCredentialsError:
        raise ConfigError(f"no credentials for {_who(profile)}",
                          fix="pass --profile with a profile that has credentials (ssocred configure writes one)") \
            from None
    except bex.CredentialRetrievalError as exc:
        # The message is credential_process's own stderr: ssocred's one line, never a secret.
        reason = str(exc).removeprefix("Error when retrieving credentials from custom-process: ").strip()
        raise ServiceError(f"credentials for {_who(profile)} failed: {clean(reason, 300)}",
                           fix=f"run: ssocred doctor{' --profile ' + profile if profile else ''}") from None
    except bex.ClientError as exc:
        raise ServiceError(f"STS GetCallerIdentity failed: {awsclient.error_code(exc)}: "
                           f"{awsclient.service_message(exc)}") from None
    except Exception as exc:
        if awsclient.is_network_error(exc):
            raise awsclient.network_error(exc, endpoint) from None
        raise
    creds = session.get_credentials()
    return Report("whoami", {
        "profile": profile,
        "account": ident["Account"],
        "arn": ident["Arn"],
        "user_id": ident["UserId"],
        "credential_source": getattr(creds, "method", None),
    })


def _who(profile: str | None) -> str:
    return f"profile '{profile}'" if profile else "the default profile"
