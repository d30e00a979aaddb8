"""Setting up: list accounts and roles, write profiles (one or all), interactive configure, whoami.

Example: ``populate(argparse.Namespace(sso_session="corp", template="{account_name}.{role_name}", ...))``
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

from ssocred.cli.render import Report
from ssocred.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from ssocred.model.config import ResolvedSso
    from ssocred.usecases.accounts import Walk


def _session(profile: str | None, sso_session: str | None) -> ResolvedSso:
    from ssocred.adapters import config_file
    from ssocred.cli.commands import resolve

    return resolve(config_file.load(), profile, sso_session)


def _walk(session: str, args: argparse.Namespace) -> Walk:
    from ssocred.adapters.store import Store
    from ssocred.usecases.accounts import walk

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


def _session_name(target: ResolvedSso) -> str:
    if target.legacy:
        raise ConfigError(
            f"'{target.cache_key}' is a legacy SSO profile (sso_start_url in the profile, no [sso-session])",
            fix="add an [sso-session NAME] section (ssocred configure writes one) and use --sso-session NAME",
        )
    return target.cache_key


def populate(args: argparse.Namespace) -> Report:
    """``ssocred configure populate``: a managed profile for every account × role."""
    from ssocred.model.naming import check_template
    from ssocred.usecases import profiles

    try:
        check_template(args.template)
    except ValueError as exc:
        raise UsageError(str(exc), fix="e.g. --template '{account_name}.{role_name}'") from None
    if args.region:
        from ssocred.cli.configure import check_region

        problem = check_region(args.region)
        if problem:
            raise UsageError(f"--region: {problem}", fix="e.g. --region eu-west-1")
    target = _session(None, args.sso_session)
    session = _session_name(target)
    if args.keep_in_sync and args.dry_run:
        raise UsageError("--keep-in-sync writes the config; it cannot go with --dry-run",
                         fix="run the dry run first, then the same command with --keep-in-sync instead")
    result = _walk(session, args)
    data = profiles.write_profiles(session, result, template=args.template, region=args.region or target.region,
                                   output=args.output, prune=args.prune or args.keep_in_sync, dry_run=args.dry_run)
    data["keep_in_sync"] = False
    if args.keep_in_sync:
        from ssocred.model.profile_sync import SyncSettings
        from ssocred.usecases.profile_sync import enable

        enable(session, SyncSettings(args.template, args.region, args.output))
        data["keep_in_sync"] = True
    return Report("populate", data)


def configure(args: argparse.Namespace) -> Report:
    """``ssocred configure``: the interactive set-up (every question has a flag)."""
    from ssocred.cli.configure import run

    return run(args)


def whoami(args: argparse.Namespace) -> Report:
    """``ssocred whoami``: STS GetCallerIdentity with the profile's credentials, as every SDK gets them."""
    from ssocred.usecases.whoami import whoami as caller

    return Report("whoami", caller(args.profile or os.environ.get("AWS_PROFILE") or None))
