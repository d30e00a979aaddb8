"""The local ``ssocred doctor`` checks: config, keyring, cache, token, registration, daemon, service.

Each looks at one thing and says pass, warn, fail or skip. Example:
``ctx = Context("dev", None); config(ctx).status == "pass"``
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ssocred.errors import ConfigError, SsocredError, UsageError
from ssocred.model.config_syntax import clean, section_label
from ssocred.model.sso import REGISTRATION_MARGIN, iso_z, needs_inline_refresh, token_usable
from ssocred.model.timefmt import duration
from ssocred.socket_protocol import STORE_KEYRING
from ssocred.usecases.doctor.check import FAIL, PASS, SKIP, WARN, Check, Context
from ssocred.usecases.doctor.routing import uses_ssocred

if TYPE_CHECKING:
    from ssocred.model.config import AwsConfig


# --- 1. config ------------------------------------------------------------------------------------


def config(ctx: Context) -> Check:
    """The config file exists and the profile or session resolves: ``config(ctx).fix`` names the line to add."""
    from ssocred.adapters import config_file, paths
    from ssocred.adapters.paths import display_path
    from ssocred.model.config import region_problem

    path = paths.aws_config_file()
    shown = display_path(path)
    problem = config_file.file_problem(path)
    if problem is not None:
        return Check("config", FAIL, problem.message, problem.fix)
    if not path.is_file():
        where = f"[sso-session {clean(ctx.session)}]" if ctx.session else "an [sso-session <name>] section"
        return Check("config", FAIL, f"{shown} does not exist",
                     f"run: ssocred configure, or create it with {where} holding "
                     "sso_start_url = <start URL> and sso_region = <region>")
    try:
        ctx.cfg = cfg = config_file.load()
        if ctx.profile and _chained(ctx, cfg, ctx.profile):
            return _chain_config(ctx, cfg)
        ctx.target = target = cfg.select(ctx.profile, ctx.session, os.environ.get("AWS_PROFILE"))
        if ctx.profile:
            prof = cfg.profile(ctx.profile)
            found = cfg.ssocred_target(ctx.profile) if uses_ssocred(prof) else target
            ctx.account, ctx.role = found.account_id, found.role_name
    except UsageError as exc:
        return Check("config", WARN, f"{exc.message}; nothing selected to check", exc.fix)
    except ConfigError as exc:
        ctx.target = None
        return Check("config", FAIL, exc.message, exc.fix)
    if not target.start_url.startswith("https://"):
        ctx.target = None  # login refuses it, so nothing after this can use the session
        return Check("config", FAIL, f"sso_start_url '{clean(target.start_url)}' does not use https",
                     "set sso_start_url = https://<your-portal>.awsapps.com/start")
    bad_region = region_problem(cfg, target, ctx.profile)
    if bad_region is not None:
        ctx.target = None  # no client can be made for it, so nothing after this can reach the portal
        return Check("config", FAIL, bad_region.message, bad_region.fix)
    what = f"profile '{clean(ctx.profile)}' uses " if ctx.profile else ""
    if target.legacy:
        return Check("config", WARN,
                     f"{what}a legacy SSO setup without an sso-session ({clean(target.start_url)}, "
                     f"{clean(target.region)}): its tokens cannot be refreshed",
                     f"move sso_start_url and sso_region into an [sso-session <name>] section and add "
                     f"sso_session = <name> to {section_label('profile', ctx.profile or '')}")
    return Check("config", PASS,
                 f"{what}sso-session '{clean(target.cache_key)}' ({clean(target.start_url)}, {clean(target.region)})")


def _chained(ctx: Context, cfg: AwsConfig, profile: str) -> bool:
    """Whether ``profile`` is a chained role (``role_arn``, or a line naming such a profile); sets ``ctx.chain``.

    A chain that cannot be used raises its ConfigError, which names the fix.
    """
    from ssocred.model.chain import Chain, resolve

    values = cfg.profile(profile).values
    try:
        found = resolve(cfg, profile)
    except ConfigError:
        if "role_arn" in values:
            raise
        return False  # not a chain: the checks below say what is wrong with it
    if isinstance(found, Chain):
        ctx.chain = found
    return ctx.chain is not None


def _chain_config(ctx: Context, cfg: AwsConfig) -> Check:
    """The config verdict of a chained profile; the later checks look at its SSO source role."""
    from ssocred.model.config import region_problem

    chain = ctx.chain
    assert chain is not None and ctx.profile is not None
    source = chain.source
    ctx.target = target = cfg.select(None, source.session, None)
    ctx.account, ctx.role = source.account_id, source.role_name
    bad_region = region_problem(cfg, target, None)
    if bad_region is not None:
        ctx.target = None
        return Check("config", FAIL, bad_region.message, bad_region.fix)
    steps = " then ".join(f"{clean(link.role_name)} in {link.account_id}" for link in chain.links)
    return Check("config", PASS,
                 f"profile '{clean(ctx.profile)}' assumes {steps} (STS in {chain.last.region}) with the credentials "
                 f"of {clean(source.role_name)} in {source.account_id}, sso-session '{clean(target.cache_key)}' "
                 f"({clean(target.start_url)}, {clean(target.region)})")


# --- 3. keyring -----------------------------------------------------------------------------------




def keyring(ctx: Context) -> Check:
    """The OS keyring answers and is unlocked (reading the session item proves both): ``keyring(ctx).status``."""
    from ssocred.adapters.store import Store
    from ssocred.errors import StoreError

    ctx.store = store = Store()
    try:
        name = store.backend_name()
        if ctx.key is None:
            ctx.keyring_ok = True
            return Check("keyring", PASS, f"{name} is available (no session selected to read)")
        ctx.stored = store.load_session(ctx.key)
    except StoreError as exc:
        return Check("keyring", FAIL, exc.message, exc.fix)
    ctx.keyring_ok = True
    return Check("keyring", PASS, f"{name} is unlocked and readable")


# --- 4. cache -------------------------------------------------------------------------------------


def cache(ctx: Context) -> Check:
    """The state dir, the store index and the profile's cached role credentials can be used: ``cache(ctx).status``.

    Each is what ``process``, ``status`` and ``logout`` read or write; none is changed here but the
    state dir, which is made (0700) when missing, exactly as the next command would make it.
    """
    from ssocred.adapters.paths import private_dir, state_dir
    from ssocred.adapters.store import is_placeholder

    if not ctx.keyring_ok or ctx.store is None:
        return Check("cache", SKIP, "the keyring cannot be read (see keyring)")
    store = ctx.store
    try:
        _usable_dir(private_dir(state_dir()))
        index = store.index()
        creds = None
        if ctx.key and ctx.account and ctx.role:
            creds = store.load_creds(ctx.key, ctx.account, ctx.role)
    except SsocredError as exc:
        return Check("cache", FAIL, exc.message, exc.fix, exit_code=exc.exit_code)
    roles = sum(1 for c in index.creds if not is_placeholder(c))
    counts = f"{_count(len(index.sessions), 'session')}, {_count(roles, 'cached role')}"
    summary = f"state dir and store index usable ({counts})"
    if not (ctx.key and ctx.account and ctx.role):
        return Check("cache", PASS, summary)
    role = f"role {clean(ctx.role)} in {clean(ctx.account)}"
    if creds is None:
        return Check("cache", PASS, f"{summary}; no credentials cached for {role} (the first call fetches them)")
    left = creds.expiration - time.time()
    state = f"valid for {duration(left)}" if left > 0 else "expired (the next call fetches new ones)"
    return Check("cache", PASS, f"{summary}; credentials for {role} cached, {state}")


def _count(n: int, word: str) -> str:
    """``_count(2, "session") == "2 sessions"``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def _usable_dir(folder: Path) -> None:
    """StoreError unless a file can be created in ``folder`` (a read-only or full file system)."""
    import tempfile

    from ssocred.errors import StoreError

    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise StoreError(f"cannot write in the state dir {folder} ({exc.strerror or type(exc).__name__})",
                         fix="make it writable, or set SSOCRED_STATE_DIR to a directory you can write") from None


# --- 5. token -------------------------------------------------------------------------------------


def token(ctx: Context) -> Check:
    """Logged in with a valid token, refreshed first when nearly expired: ``token(ctx).summary``.

    The refresh is ``tokens.fresh_token``'s singleflight, so it never races the daemon or ``process``.
    """
    from ssocred.errors import LoginRequired
    from ssocred.usecases.tokens import fresh_token

    if ctx.key is None:
        return Check("token", SKIP, "no SSO session resolved (see config)")
    if not ctx.keyring_ok or ctx.store is None:
        return Check("token", SKIP, "the keyring cannot be read (see keyring)")
    current = ctx.stored
    if current is None:
        return Check("token", FAIL, f"not logged in to SSO session '{clean(ctx.key)}'", ctx.login_fix())
    now = time.time()
    refreshed = False
    if needs_inline_refresh(current, now) and current.refreshable(now):
        try:
            new = fresh_token(ctx.store, ctx.key)
        except LoginRequired as exc:
            return Check("token", FAIL, exc.message, ctx.login_fix())
        except SsocredError as exc:
            return Check("token", FAIL, f"the token is expired or nearly so and refreshing it failed: {exc.message}",
                         exc.fix, exit_code=exc.exit_code)
        refreshed = new.access_token != current.access_token
        ctx.stored = current = new
        now = time.time()
    left = current.remaining(now)
    if not token_usable(current, now):
        why = "and cannot be refreshed" if not current.refreshable(now) else "and was not refreshed"
        return Check("token", FAIL, f"the token of SSO session '{clean(ctx.key)}' has expired {why}",
                     ctx.login_fix())
    ctx.token = current
    from ssocred.usecases.tokens import interrupted_text, refresh_interrupted

    began = refresh_interrupted(ctx.store, ctx.key, current)
    if began is not None:
        return Check("token", WARN, f"{interrupted_text(clean(ctx.key))} at {iso_z(began)}: the token works for "
                     f"{duration(left)}, but the service may no longer accept its refresh token", ctx.login_fix())
    if refreshed:
        return Check("token", PASS, f"logged in; token refreshed just now, valid for {duration(left)}")
    if needs_inline_refresh(current, now):
        return Check("token", WARN, f"logged in, but the token ends in {duration(left)} and cannot be refreshed",
                     ctx.login_fix())
    extra = "" if current.refreshable(now) else "; not refreshable: log in again when it expires"
    return Check("token", PASS, f"logged in; token valid for {duration(left)}{extra}")


# --- 6. registration ------------------------------------------------------------------------------


def registration(ctx: Context) -> Check:
    """The client registration behind the refresh token has over 7 days left: ``registration(ctx).status``."""
    if ctx.stored is None:
        return Check("registration", SKIP, "no stored token (see token)")
    reg = ctx.stored.registration
    if reg is None:
        return Check("registration", SKIP, "no client registration stored with this token (it cannot be refreshed)")
    now = time.time()
    left = reg.expires_at - now
    until = iso_z(reg.expires_at)
    if left <= 0:
        return Check("registration", FAIL, f"the client registration expired at {until}; the token cannot be "
                     "refreshed", f"{ctx.login_fix()} (a login registers a new client)")
    if left < REGISTRATION_MARGIN:
        fix = f"{ctx.login_fix()} (a login registers a new client when this one has under 7 days left)"
        return Check("registration", WARN, f"the client registration ends in {duration(left)} ({until}); then the "
                     "token can no longer be refreshed", fix)
    return Check("registration", PASS, f"client registration valid for {duration(left)} (until {until})")


# --- 10. daemon, 11. service -----------------------------------------------------------------------


def daemon(ctx: Context) -> Check:
    """The daemon runs (it refreshes tokens before anyone waits): ``daemon(ctx).summary == "running (pid ...)"``."""
    from ssocred.adapters.notify import read_status

    status = read_status()
    if status is None:
        from ssocred.adapters import awscli_cache

        exported = ctx.key is not None and ctx.key in awscli_cache.exported_sessions()
        ends = f" (it expires at {iso_z(ctx.stored.expires_at)})" if exported and ctx.stored else ""
        what = (f"; the token exported to the AWS CLI cache for '{clean(ctx.key or '')}' is not kept fresh, so the "
                f"AWS CLI and SDKs using it stop working when it expires{ends}") if exported else ""
        return Check("daemon", WARN, f"not running: tokens are refreshed only when a command needs one{what}",
                     "run: ssocred service install (or start ssocred daemon)")
    who = status.get("started_by")
    by = ", autostarted" if who == "autostart" else f", started {who}" if who == "by hand" else \
        f", started by {who}" if who else ""
    running = f"running (pid {status.get('pid')}, since {status.get('started_at', '?')}{by})"
    session = status.get("sessions", {}).get(ctx.key or "") if isinstance(status.get("sessions"), dict) else None
    error = session.get("last_error") if isinstance(session, dict) else None
    if error:
        return Check("daemon", WARN, f"{running}; its last attempt for '{clean(ctx.key or '')}' failed: "
                     f"{clean(str(error), 200)}", None)
    return Check("daemon", PASS, running)


def service(ctx: Context) -> Check:
    """The daemon is installed as systemd user units or a launchd agent: ``service(ctx).status``."""
    from ssocred.adapters import service_manager

    try:
        platform = service_manager.host_platform()
        info = service_manager.status(platform)
    except SsocredError as exc:
        return Check("service", SKIP, exc.message)
    store = info.get("store")
    install = "run: ssocred service install" + (f" --store {store}" if store and store != STORE_KEYRING else "")
    states = set(info["files"].values())
    if "missing" in states:
        return Check("service", WARN, f"not installed ({info['manager']})", install)
    if "outdated" in states:
        return Check("service", WARN, f"installed, but its files are outdated ({info['manager']})", install)
    if platform == "darwin":
        agent = info.get("agent", {})
        if not agent.get("loaded"):
            return Check("service", WARN, "installed, but the launchd agent is not loaded", install)
        return Check("service", PASS, f"installed and loaded ({info['manager']})")
    socket = info.get("units", {}).get("ssocred.socket", {}).get("active", "unknown")
    if socket == "active":
        return Check("service", PASS, f"installed; ssocred.socket is active ({info['manager']})")
    if socket in ("inactive", "failed", "deactivating"):
        return Check("service", WARN, f"installed, but ssocred.socket is {socket}",
                     "run: systemctl --user enable --now ssocred.socket")
    # No user session manager to ask (a container, su, ssh without lingering): the files are all we can see.
    return Check("service", PASS, f"installed ({info['manager']}); cannot tell whether ssocred.socket is active "
                 f"({clean(str(socket), 100)})")
