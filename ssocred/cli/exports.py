"""``ssocred credentials-file``: export a role's credentials to ``~/.aws/credentials``, list or remove exports.

Example: ``ssocred credentials-file --profile dev`` writes ``[dev]``; ``--remove --as dev`` takes it out.
"""

from __future__ import annotations

import argparse
import os

from ssocred.cli.render import Report
from ssocred.errors import UsageError


def credentials_file(args: argparse.Namespace) -> Report:
    """Export the target's credentials, remove an export (``--remove``), or list them (no target)."""
    from ssocred.cli.commands import _store, _target
    from ssocred.model.credentials_file import Export, check_name
    from ssocred.usecases import exports
    from ssocred.usecases.autostart import start_in_background

    target_given = any(v is not None for v in (args.profile, args.sso_session, args.account_id, args.role_name))
    if args.remove:
        if args.sso_session or args.account_id or args.role_name:
            raise UsageError("--remove takes --as NAME (or --profile P, for the section named P)",
                             fix="e.g. ssocred credentials-file --remove --as dev")
        name = args.as_name or args.profile
        if name is None:
            raise UsageError("--remove needs the section's name", fix="e.g. ssocred credentials-file --remove --as dev")
        removed = exports.remove({name})
        return Report("credentials-file", {"action": "remove", "name": name, "removed": bool(removed),
                                           "exports": exports.listing()})
    if not target_given and args.as_name is None:
        return Report("credentials-file", {"action": "list", "exports": exports.listing(),
                                           "file": _shown_file()})
    name = args.as_name or args.profile or (os.environ.get("AWS_PROFILE") if not target_given else None)
    if name is None:
        raise UsageError("name the section to write with --as NAME",
                         fix="e.g. ssocred credentials-file --sso-session corp --account-id 111122223333 "
                             "--role-name Admin --as admin")
    check_name(name)
    from ssocred.model.chain import target_key

    target, _region = _target(args)
    start_in_background()  # it keeps the section fresh
    written = exports.export(_store(), Export(name, *target_key(target)), target)
    return Report("credentials-file", {"action": "export", **written.as_json(),
                                       "shadows_profile": _shadows(name)})


def _shown_file() -> str:
    from ssocred.adapters import credentials_file
    from ssocred.adapters.paths import display_path

    return display_path(credentials_file.path())


def _shadows(name: str) -> bool:
    """Whether ``[profile NAME]`` in the config has a credential_process the export now takes precedence over."""
    from ssocred.cli.commands import _load_config
    from ssocred.errors import ConfigError

    try:
        profile = _load_config().profiles.get(name)
    except ConfigError:
        return False
    return profile is not None and bool(profile.values.get("credential_process"))
