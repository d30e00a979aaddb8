"""Profiles kept in sync with the accounts and roles of a session: populate with ``--prune``, and what changed.

Opt-in per ``[sso-session]`` (``ssocred configure populate --keep-in-sync`` writes the keys); the
daemon calls ``sync`` on a schedule and after each login. Nothing is written when nothing changed,
and the user's own profiles are never touched (the populate rules).
Example: ``sync(Store(), "corp", SyncSettings()).appeared``
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ssocred.model.profile_sync import Role, SyncSettings, settings, values

if TYPE_CHECKING:
    from ssocred.adapters.store import Store
    from ssocred.model.config import AwsConfig


@dataclass(frozen=True)
class Synced:
    """What one sync did: ``Synced("corp", changed=True, appeared=[Role(...)], gone=[])``."""

    session: str
    changed: bool
    appeared: list[Role] = field(default_factory=list)
    gone: list[Role] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)


def enabled(cfg: AwsConfig) -> dict[str, SyncSettings]:
    """The sessions whose profiles are kept in sync: ``enabled(load()) == {"corp": SyncSettings()}``."""
    found = {}
    for name, section in cfg.sso_sessions.items():
        chosen = settings(section.values)
        if chosen is not None:
            found[name] = chosen
    return found


def enable(session: str, chosen: SyncSettings) -> bool:
    """Turn sync on for ``session`` in its ``[sso-session]`` section; True when the file changed."""
    from ssocred.adapters import config_file

    old, new, _ = config_file.edit(lambda text, shown: (config_file.sso_session_text(text, shown, session,
                                                                                   values(chosen)), None))
    return old != new


def sync(store: Store, session: str, chosen: SyncSettings, *, sso_region: str) -> Synced:
    """List the session's accounts and roles, write its profiles with ``--prune``, and say what changed."""
    from ssocred.adapters import config_file
    from ssocred.usecases.accounts import walk
    from ssocred.usecases.profiles import write_profiles

    before = config_file.managed_targets(session)
    listed = walk(store, session, max_workers=4, label="")
    names = {a.account.account_id: a.account.name for a in listed.accounts}
    after = {(a.account.account_id, role) for a in listed.accounts for role in a.roles}
    result = write_profiles(session, listed, template=chosen.template, region=chosen.region or sso_region,
                            output=chosen.output, prune=True, dry_run=False)
    appeared = [Role(a, r, names.get(a)) for a, r in sorted(after - before)]
    gone = [Role(a, r) for a, r in sorted(before - after)]
    return Synced(session, bool(result["changed"]), appeared, gone, result)
