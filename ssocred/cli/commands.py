"""The use cases behind each CLI command; each returns a Report (data, no secrets).

Example: ``commands.status(argparse.Namespace(json=True))``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import TYPE_CHECKING, Any

from ssocred.cli.render import Report
from ssocred.errors import ConfigError, ServiceError, SsocredError, UsageError
from ssocred.model.sso import iso_z

if TYPE_CHECKING:
    from ssocred.adapters.store import Store
    from ssocred.model.chain import Target
    from ssocred.model.config import AwsConfig, ResolvedSso
    from ssocred.model.sso import RoleCredentials
    from ssocred.process_args import Request


def resolve(cfg: AwsConfig, profile: str | None, sso_session: str | None) -> ResolvedSso:
    """The SSO session a command acts on, ``$AWS_PROFILE`` included: ``resolve(cfg, "dev", None).cache_key``."""
    return cfg.select(profile, sso_session, os.environ.get("AWS_PROFILE"))


def _load_config() -> AwsConfig:
    from ssocred.adapters import config_file

    return config_file.load()


def _store() -> Store:
    from ssocred.adapters.store import Store

    return Store()


def logout(args: argparse.Namespace) -> Report:
    """``ssocred logout``: portal Logout (errors reported), then wipe the stored session."""
    from ssocred.adapters import awscli_cache, locks, memory_keyring
    from ssocred.adapters.portal import Portal
    from ssocred.errors import NoKeyring, StoreError
    from ssocred.socket_protocol import forwarded_socket
    from ssocred.usecases import container as grants
    from ssocred.usecases import exports

    store = _store()
    configured: set[str] = set()
    if args.all:
        stored = store.stored_sessions()
        configured = _configured_sessions() - stored
        keys = sorted(stored | configured)
    else:
        keys = [resolve(_load_config(), args.profile, args.sso_session).cache_key]
    done: list[dict[str, Any]] = []
    for key in keys:
        entry: dict[str, Any] = {"session": key, "portal_error": None, "was_logged_in": True}
        token = None
        try:
            token = store.load_session(key)
            entry["was_logged_in"] = token is not None
        except SsocredError as exc:
            entry["portal_error"] = f"stored token unreadable ({exc.message})"
        if token is not None and token.remaining(time.time()) > 0:
            try:
                Portal(token.region).logout(token.access_token)
            except Exception as exc:  # reported, never fatal: the local wipe must still happen
                entry["portal_error"] = exc.message if isinstance(exc, SsocredError) else type(exc).__name__
        # Under the session lock: a refresh in flight elsewhere must not save the session back.
        with locks.held(store.session_lock(key), f"SSO session '{key}'") as lock:
            try:
                store.delete_session(key)
            except NoKeyring:
                if forwarded_socket() is not None:
                    raise StoreError("this host keeps no SSO session: its credentials come from a daemon "
                                     "forwarded to it", fix="run ssocred logout where that daemon runs, or end "
                                     "the forward there (ssocred forward --remove NAME)") from None
                if not memory_keyring.forget_stranded(store.service, key):
                    raise
                # Held by a memory-store daemon that has stopped: its secrets went with it, its entries go now.
                entry["portal_error"] = "held by a memory-store daemon that has stopped; nothing left to revoke"
            locks.remove_held(lock)  # the last step of the hold: the session leaves no lock file
        locks.discard(store.login_lock(key))
        awscli_cache.remove_export(key)
        entry["exports_removed"] = exports.remove_session(key)
        grants.revoke_session(key)  # a logged-out session's containers lose their credentials at once
        if key not in configured or entry["was_logged_in"]:
            done.append(entry)  # a session only named in the config is reported when something was there
    return Report("logout", {"sessions": done})


def _configured_sessions() -> set[str]:
    """The token cache keys the config names: sso-session names and legacy profiles' start URLs."""
    try:
        cfg = _load_config()
    except ConfigError:
        return set()
    legacy = {p.sso_start_url for p in cfg.profiles.values() if p.sso_start_url and not p.sso_session}
    return set(cfg.sso_sessions) | {url for url in legacy if url}


def status(args: argparse.Namespace) -> Report:
    """``ssocred status``: sessions from the config and the store index; never a secret."""
    from ssocred.adapters.notify import read_status
    from ssocred.adapters.store import Store, is_placeholder
    from ssocred.model.chain import is_chained, role_shown
    from ssocred.usecases.memory_store import store_report

    try:
        configured = set(_load_config().sso_sessions)
    except ConfigError:
        configured = set()
    store, daemon = Store(), read_status()
    index, kept = store.index(), store_report(store.service, daemon)
    now = time.time()
    sessions: list[dict[str, Any]] = []
    for name in sorted(configured | set(index.sessions) | set(kept["lost_sessions"])):
        entry = index.sessions.get(name)
        if entry is None:  # a session a stopped memory-store daemon held is gone with it
            sessions.append({"session": name, "logged_in": False, "credentials": [],
                             "lost_with_daemon": name in kept["lost_sessions"]})
            continue
        creds = [
            {"account_id": c.account_id, "role_name": role_shown(c.key),
             "chained": is_chained(c.key), "expiration": iso_z(c.expiration), "expiration_epoch": c.expiration}
            for c in index.creds if c.session == name and not is_placeholder(c)
        ]
        sessions.append({
            "session": name,
            "logged_in": True,
            "expires_at": iso_z(entry.expires_at),
            "expires_epoch": entry.expires_at,
            # Saved with the token; an expired client registration or a refusal ends it later without a save.
            "refreshable": entry.refreshable and entry.rejected_at is None
            and (entry.registration_expires_at or now) >= now,
            # The service refused this token (revoked, or logged out elsewhere): only a login helps.
            "rejected_at": iso_z(entry.rejected_at) if entry.rejected_at else None,
            "registration_expires_at": iso_z(entry.registration_expires_at)
            if entry.registration_expires_at else None,
            # A refresh that has not stored its result: in flight now, or interrupted.
            "refresh_started_at": iso_z(entry.refresh_started_at) if entry.refresh_started_at else None,
            "credentials": creds,
        })
    from ssocred.adapters import credentials_file
    from ssocred.adapters.paths import display_path
    from ssocred.usecases import exports

    try:
        exported = exports.listing()
    except ConfigError:
        exported = []  # doctor names an unreadable credentials file; status shows what it can
    from ssocred.socket_protocol import forwarded_socket
    from ssocred.usecases import forwarded

    try:
        forwards = [{"name": f.name, "allow": [str(r) for r in f.rules], "local_socket": path}
                    for f, path in forwarded.listing()]
    except SsocredError:
        forwards = []  # an unreadable forwards file: `ssocred forward --list` names it
    return Report("status", {"sessions": sessions, "daemon": daemon, "store": kept, "exports": exported,
                             "exports_file": display_path(credentials_file.path()), "forwards": forwards,
                             "forwarded_socket": forwarded_socket()})


def import_token(args: argparse.Namespace) -> Report:
    """``ssocred import``: copy the AWS CLI's cached token into the keyring."""
    from ssocred.adapters import awscli_cache

    target = resolve(_load_config(), args.profile, args.sso_session)
    token = awscli_cache.read_token(target.cache_key, target.start_url, target.region)
    from ssocred.adapters import locks

    store = _store()
    with locks.held(store.session_lock(target.cache_key), f"SSO session '{target.cache_key}'"):
        store.save_session(target.cache_key, token)
    return Report("import", {
        "session": target.cache_key,
        "expires_at": iso_z(token.expires_at),
        "refreshable": token.refreshable(time.time()),
        "store": store.backend_name(),
    })


def _target(args: argparse.Namespace) -> tuple[Target, str | None]:
    """The target of ``--profile`` (an SSO role or a chained role) or of ``--sso-session/--account-id/--role-name``.

    Also the profile's region (a chain's: where its STS call goes). The options are checked by the
    one ``ssocred process`` grammar, so ``env``, ``exec`` and ``console`` accept and refuse exactly
    what ``process`` does; messages name this command.
    """
    from ssocred.model.chain import Chain
    from ssocred.usecases.chain import target_for

    request = _request(args)
    target, _may_login = target_for(request)
    region = _load_config().profile(request.profile).region if request.profile is not None else None
    if region is None and isinstance(target, Chain):
        region = target.last.region
    return target, region


def _request(args: argparse.Namespace) -> Request:
    """The command's target as the one ``ssocred process`` grammar reads it (``$AWS_PROFILE`` when none is given)."""
    from ssocred.process_args import build

    given = (args.profile, args.sso_session, args.account_id, args.role_name)
    profile = args.profile
    if all(value is None for value in given):
        profile = os.environ.get("AWS_PROFILE") or None
    return build(profile, args.sso_session, args.account_id, args.role_name, prog=f"ssocred {args.command}")


def _role_credentials(args: argparse.Namespace) -> tuple[RoleCredentials, str | None]:
    """Credentials for the command's target, and the profile's region."""
    target, region = _target(args)
    return _credentials_for(target), region


def _credentials_for(target: Target) -> RoleCredentials:
    """The target's credentials: from a daemon forwarded to this host when there is one, else this host's store."""
    from ssocred.socket_protocol import forwarded_socket
    from ssocred.usecases.autostart import start_in_background
    from ssocred.usecases.chain import credentials_for

    forwarded = forwarded_socket()
    if forwarded is not None:
        from ssocred.usecases.forwarded import credentials_for as forwarded_credentials

        return forwarded_credentials(forwarded, target)
    start_in_background()
    return credentials_for(_store(), target)


def credential_env(creds: RoleCredentials, region: str | None) -> dict[str, str]:
    """The AWS_* variables for ``creds``: ``credential_env(c, "eu-west-1")["AWS_REGION"]``."""
    env = {
        "AWS_ACCESS_KEY_ID": creds.access_key_id,
        "AWS_SECRET_ACCESS_KEY": creds.secret_access_key,
        "AWS_SESSION_TOKEN": creds.session_token,
        "AWS_CREDENTIAL_EXPIRATION": iso_z(creds.expiration),
    }
    if region:
        env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = region
    return env


def env(args: argparse.Namespace) -> int:
    """``ssocred env``: print the credentials in a shell's syntax, or as the AWS CLI's export-credentials does."""
    from ssocred.cli.render import env_text

    creds, region = _role_credentials(args)
    sys.stdout.write(env_text(args.format, credential_env(creds, region), creds))
    return 0


def console(args: argparse.Namespace) -> int:
    """``ssocred console``: open the AWS console signed in as the role (``--print``: print the URL only)."""
    from ssocred.model.chain import target_key
    from ssocred.usecases.console import console_url
    from ssocred.usecases.login import browser_reachable

    target, region = _target(args)
    region = args.region or region or _sso_region(target_key(target)[0])
    creds = _credentials_for(target)
    url = console_url(creds, region, args.destination)
    reachable, why = browser_reachable(os.environ)
    if not args.print and reachable and _open_browser(url):
        print(f"Opened the AWS console for {creds.role_name} in {creds.account_id} (the link works for 15 minutes).",
              file=sys.stderr)
        return 0
    if not args.print:
        print(f"ssocred: no browser to open ({why or 'it did not start'}); open this link within 15 minutes:",
              file=sys.stderr)
    print(url)
    return 0


def _sso_region(session: str) -> str:
    """The SSO region of ``session``: the console's region when neither --region nor the profile names one."""
    found = _load_config().sso_sessions.get(session)
    if found is None or not found.region:
        raise UsageError("no region for the console", fix="pass --region, e.g. --region eu-west-1")
    return found.region


def _open_browser(url: str) -> bool:
    import webbrowser

    try:
        return webbrowser.open_new_tab(url)
    except webbrowser.Error:
        return False


def container(args: argparse.Namespace) -> Report:
    """``ssocred container``: the daemon serves the role over HTTP; the variables that point an SDK there."""
    from ssocred.model.chain import target_key
    from ssocred.usecases import container as grants

    served = grants.target(_request(args))
    if args.revoke:
        session, account, role = target_key(served)
        return Report("container-revoke", {"session": session, "account_id": account, "role_name": role,
                                           "revoked": grants.revoke(served) > 0})
    return Report("container", grants.grant(served).variables())


def exec_command(args: argparse.Namespace) -> int:
    """``ssocred exec``: replace this process with CMD, credentials in its environment."""
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise UsageError("ssocred exec needs a command", fix="e.g. ssocred exec --profile dev -- aws s3 ls")
    environ = dict(os.environ)
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        environ.pop(name, None)
    environ.update(credential_env(*_role_credentials(args)))
    from ssocred.usecases.unsaved import warning_lines

    sys.stderr.write("".join(warning_lines()))  # said now: exec leaves no later moment
    sys.stdout.flush()
    try:
        os.execvpe(cmd[0], cmd, environ)  # noqa: S606 - running the user's command is the point
    except OSError as exc:
        from ssocred.model.config_syntax import clean

        print(f"ssocred: cannot run {clean(cmd[0])}: {exc.strerror}", file=sys.stderr)
        return 127
    return 0  # not reached


def delegated(args: argparse.Namespace) -> int:
    """Commands with their own parsers are dispatched before argparse; never reached."""
    raise UsageError(f"ssocred {args.command} could not be started", fix=f"run: ssocred {args.command} --help")


def demo(args: argparse.Namespace) -> int:
    """``ssocred demo``: the end-to-end tour against the embedded emulator."""
    from ssocred.cli.demo import run

    try:
        return run(keep=args.keep)
    except OSError as exc:
        raise ServiceError(f"the demo failed: {exc}") from None


def discover(args: argparse.Namespace) -> Report:
    """``ssocred discover [--profile MGMT] [--write-config] [--session-name NAME]``."""
    from ssocred.model.config_syntax import clean
    from ssocred.model.naming import name_problem
    from ssocred.usecases import discover as admin_view

    session_name = getattr(args, "session_name", None)
    if session_name is not None and name_problem(session_name):
        raise UsageError(f"--session-name {clean(session_name)!r} is not a usable section name",
                         fix="use letters, digits and . _ - (e.g. --session-name corp)")
    profile = getattr(args, "profile", None) or os.environ.get("AWS_PROFILE") or None
    return Report("discover", admin_view.run(profile, session_name, getattr(args, "write_config", False)))


def doctor(args: argparse.Namespace) -> int:
    """``ssocred doctor [--profile P | --sso-session S] [--json]``: prints the checks, returns the exit code."""
    from ssocred.cli.render import render
    from ssocred.usecases.doctor.run import diagnose

    data = diagnose(args.profile, args.sso_session)
    render(Report("doctor", data), as_json=args.json, out=sys.stdout)
    code: int = data["exit_code"]
    return code
