"""Profiles that run ssocred: write one per account and role into ``~/.aws/config``, kept and pruned.

Example: ``write_profiles("corp", walk(store, "corp"), template="{account_name}.{role_name}", region=None,
output=None, prune=False, dry_run=True)["diff"]``
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ssocred.usecases.accounts import Walk


def command_word() -> str:
    """How generated profiles start ssocred: ``"ssocred"`` when PATH finds this one, else its absolute path."""
    import shlex
    import shutil

    from ssocred.adapters.paths import ssocred_command

    cmd = ssocred_command()
    found = shutil.which("ssocred")
    if len(cmd) == 1 and found and os.path.realpath(found) == os.path.realpath(cmd[0]):
        return "ssocred"
    return " ".join(shlex.quote(c) for c in cmd)


def write_profiles(session: str, result: Walk, *, template: str, region: str | None, output: str | None,
                   prune: bool, dry_run: bool) -> dict[str, Any]:
    """Write one managed profile per account × role of ``result``; returns what changed (and the diff)."""
    from ssocred.adapters import config_file
    from ssocred.adapters.paths import display_path
    from ssocred.model.naming import Target, assign_names, profile_values

    targets = [Target(session, a.account.account_id, a.account.name, role, a.account.email)
               for a in result.accounts for role in a.roles]
    names = assign_names(template, targets, region)
    command = command_word()
    desired = {n: (t, profile_values(command, t, region=region, output=output)) for n, t in names.items()}
    path = config_file.config_path()
    old, new, changes = config_file.edit(
        lambda text, shown: config_file.populate_text(text, shown, session, desired, prune=prune),
        dry_run=dry_run, path=path,
    )
    shown = display_path(path)
    return {
        "session": session,
        "config": shown,
        "dry_run": dry_run,
        "changed": old != new,
        "diff": config_file.diff(old, new, shown) if dry_run else None,
        "accounts": len(result.accounts),
        "profiles": len(desired),
        "added": changes.added,
        "updated": changes.updated,
        "renamed": [{"from": a, "to": b} for a, b in changes.renamed],
        "removed": changes.removed,
        "unchanged": len(changes.unchanged),
        "skipped": changes.skipped,
    }
