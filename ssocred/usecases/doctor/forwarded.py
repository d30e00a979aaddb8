"""The checks that change on a host whose credentials come from a forwarded daemon (``ssocred forward``).

There the keyring, a local daemon and a service are not needed; what matters is whether the
forwarded daemon answers the profile's role. Example: ``access(ctx).summary`` is
``"the forwarded daemon answered role Dev in 111122223333"``.
"""

from __future__ import annotations

from ssocred.errors import SsocredError
from ssocred.model.config import SsoTarget
from ssocred.model.config_syntax import clean
from ssocred.usecases.doctor.check import FAIL, PASS, SKIP, Check, Context


def keyring(ctx: Context) -> Check:
    """Not used here: ``keyring(ctx).status == SKIP`` with the forwarded socket named."""
    return Check("keyring", SKIP, f"not used here: credentials come from the daemon forwarded to this host "
                 f"({ctx.forwarded})")


def access(ctx: Context) -> Check:
    """The forwarded daemon answers the profile's role (its allow-list and its session): ``access(ctx).status``."""
    from ssocred.usecases import forwarded

    if not (ctx.account and ctx.role and ctx.key and ctx.forwarded):
        return Check("access", SKIP, "no account and role to check (select a profile that names them)")
    target = ctx.chain if ctx.chain is not None else SsoTarget(ctx.key, ctx.account, ctx.role)
    try:
        creds = forwarded.credentials_for(ctx.forwarded, target)
    except SsocredError as exc:
        return Check("access", FAIL, f"the forwarded daemon: {exc.message}", exc.fix, exit_code=exc.exit_code)
    return Check("access", PASS, f"the forwarded daemon answered role {clean(creds.role_name)} in "
                 f"{clean(creds.account_id)}")


def daemon(ctx: Context) -> Check:
    """A forwarded daemon stands in for a local one: ``daemon(ctx).status == PASS``."""
    return Check("daemon", PASS, f"a daemon is forwarded to this host ({ctx.forwarded}); none is needed here")


def service(ctx: Context) -> Check:
    """No service is needed where a daemon is forwarded: ``service(ctx).status == SKIP``."""
    return Check("service", SKIP, "not needed: a daemon is forwarded to this host")
