"""The ``exports`` check: which sections ssocred keeps in ``~/.aws/credentials``, and whether they are fresh."""

from __future__ import annotations

from ssocred.errors import ConfigError
from ssocred.usecases.doctor.check import PASS, WARN, Check, Context


def exports(ctx: Context) -> Check:
    """Exported sections, named: ``exports(ctx).summary == "[dev] (corp 111122223333 Admin) until ..."``."""
    from ssocred.adapters import credentials_file
    from ssocred.adapters.notify import read_status
    from ssocred.adapters.paths import display_path
    from ssocred.usecases import exports as exported

    shown = display_path(credentials_file.path())
    try:
        items = exported.listing()
    except ConfigError as exc:
        return Check("exports", WARN, exc.message, exc.fix)
    if not items:
        return Check("exports", PASS, f"nothing exported to {shown}")
    listed = "; ".join(f"[{e['name']}] ({e['session']} {e['account_id']} {e['role_name']}) "
                       + ("expired" if e["expired"] else f"until {e['expires']}") for e in items)
    stale = [e["name"] for e in items if e["expired"]]
    if not stale:
        return Check("exports", PASS, f"exported to {shown}: {listed}")
    why = "the daemon has not rewritten them" if read_status() is not None else "no daemon runs to keep them fresh"
    return Check("exports", WARN, f"expired sections in {shown} ({why}): {listed}",
                 "run: ssocred service install (or start ssocred daemon); or remove one with: "
                 f"ssocred credentials-file --remove --as {stale[0]}")
