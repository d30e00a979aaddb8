"""Role credentials exported to ``~/.aws/credentials`` for tools that read nothing else; kept fresh by the daemon.

Opt-in per profile (``ssocred credentials-file --profile dev``); the file's marked sections are the
list of exports, so ``logout``, ``status``, ``doctor`` and the daemon all read the same thing.
Example: ``export(Store(), Export("dev", *key), SsoTarget(*key)).export.name == "dev"``
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ssocred.errors import SsocredError
from ssocred.model.credentials_file import Export
from ssocred.model.sso import iso_z
from ssocred.usecases.credentials import Clock, cached

if TYPE_CHECKING:
    from ssocred.adapters.store import Store
    from ssocred.model.chain import Target


@dataclass(frozen=True)
class Written:
    """What one export wrote: ``Written(Export(...), expires=1700000000.0, file="~/.aws/credentials")``."""

    export: Export
    expires: float
    file: str

    def as_json(self) -> dict[str, Any]:
        """``{"name": "dev", "session": "corp", ..., "expires": "2026-...Z", "file": "~/.aws/credentials"}``."""
        e = self.export
        return {"name": e.name, "session": e.session, "account_id": e.account_id, "role_name": e.role_name,
                "expires": iso_z(self.expires), "file": self.file}


def export(store: Store, wanted: Export, target: Target, *, clock: Clock = time.time) -> Written:
    """Write ``wanted``'s section now with fresh credentials of ``target`` (the cache, or one fetch).

    A chained role is exported like any other: its cached item carries the chain, so the daemon
    fetches it again by itself. Example: ``export(store, Export("dev", *key), SsoTarget(*key))``
    """
    from ssocred.adapters import credentials_file
    from ssocred.adapters.paths import display_path
    from ssocred.usecases.chain import credentials_for

    creds = credentials_for(store, target, clock=clock)
    credentials_file.write([(wanted, creds)])
    return Written(wanted, creds.expiration, display_path(credentials_file.path()))


def remove(names: set[str]) -> list[str]:
    """Remove the named exported sections: ``remove({"dev"}) == ["dev"]`` when it was there."""
    from ssocred.adapters import credentials_file

    return credentials_file.remove(names)


def remove_session(session: str) -> list[str]:
    """Remove every section exported from ``session`` (``logout``); the names removed."""
    from ssocred.adapters import credentials_file

    return credentials_file.remove({e.name for e in credentials_file.exports() if e.session == session})


def listing(*, clock: Clock = time.time) -> list[dict[str, Any]]:
    """Every export with its expiry: ``[{"name": "dev", ..., "expires": "...", "expired": False}]``."""
    from ssocred.adapters import credentials_file

    now = clock()
    return [
        {"name": e.name, "session": e.session, "account_id": e.account_id, "role_name": e.role_name,
         "expires": iso_z(e.expires) if e.expires else None,
         "expired": e.expires is None or e.expires <= now}
        for e in credentials_file.exports()
    ]


def roles() -> set[tuple[str, str, str]]:
    """The roles some section is exported from (the daemon pre-fetches them whether used or not)."""
    from ssocred.adapters import credentials_file

    return {e.role for e in credentials_file.exports()}


def sync(store: Store, *, clock: Clock = time.time) -> list[str]:
    """Rewrite every exported section whose cached credentials are newer than the file's; the names.

    Reads the keyring only for sections that are behind the cache (the index says which).
    Example: ``sync(Store()) == ["dev"]`` right after the daemon pre-fetched dev's role.
    """
    from ssocred.adapters import credentials_file

    index = store.index()
    behind = []
    for e in credentials_file.exports():
        entry = index.find_creds(*e.role)
        if e.session in index.sessions and entry is not None and entry.expiration > (e.expires or 0.0):
            behind.append(e)
    items = []
    for e in behind:
        try:
            creds = cached(store, *e.role, clock=clock)
        except SsocredError:
            continue  # the keyring's turn comes again at the next scan
        if creds is not None:
            items.append((e, creds))
    if items:
        credentials_file.write(items)
    return [e.name for e, _ in items]
