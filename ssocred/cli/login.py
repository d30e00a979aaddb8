"""``ssocred login``: the interactive login (browser, ``--remote`` through ``ssh -L``, or device code).

Example: ``login(argparse.Namespace(profile=None, sso_session="corp", use_device_code=False, ...))``
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from ssocred.cli.commands import _load_config, _store, resolve
from ssocred.cli.render import Report
from ssocred.errors import UsageError
from ssocred.model.sso import iso_z


def login(args: argparse.Namespace) -> Report:
    """``ssocred login``: interactive login, token into the keyring."""
    from ssocred.adapters import awscli_cache, signals
    from ssocred.model.config import region_problem
    from ssocred.usecases.login import LoginRequest
    from ssocred.usecases.login import login as do_login

    remote_port = _remote_port(args)
    cfg = _load_config()
    target = resolve(cfg, args.profile, args.sso_session)
    problem = region_problem(cfg, target, args.profile or os.environ.get("AWS_PROFILE"))
    if problem is not None:
        raise problem
    store = _store()
    backend = store.backend_name()
    req = LoginRequest(
        key=target.cache_key,
        start_url=target.start_url,
        region=target.region,
        scopes=target.scopes,
        legacy=target.legacy,
        use_device_code=args.use_device_code,
        open_browser=not args.no_browser,
        timeout=args.timeout,
        remote_port=remote_port,
        device_code_command=_device_code_command(args),
    )
    out = sys.stderr if args.json else sys.stdout
    result = do_login(req, store, out)
    token = result.token
    key = target.cache_key
    # The opt-in is recorded only once the login succeeded: an interrupted or failed login changes nothing.
    opted_in = args.export_aws_cli_cache and key not in awscli_cache.exported_sessions()
    exported = None
    with signals.held():  # the opt-in and its file, both or neither
        if opted_in:
            awscli_cache.set_export(key, True)
        if key in awscli_cache.exported_sessions():
            # login() exports what it saves when the session was exported before; not a reused token.
            fresh = opted_in or result.reused
            exported = str(awscli_cache.export_token(key, token) if fresh else awscli_cache.token_path(key))
    note = None
    if exported is not None and args.export_aws_cli_cache:  # said once: when the export is asked for
        from ssocred.adapters.notify import read_status
        from ssocred.adapters.service_manager import installed

        if read_status() is None and not installed():
            note = ("the exported token is kept fresh only while the ssocred daemon runs; without it the AWS CLI "
                    f"and SDKs that read it stop working when it expires ({iso_z(token.expires_at)}); "
                    "to keep it fresh, run: ssocred service install")
    return Report("login", {
        "export_note": note,
        "session": target.cache_key,
        "flow": result.flow,
        "reused": result.reused,
        "expires_at": iso_z(token.expires_at),
        "expires_in": round(token.remaining(time.time())),
        "refreshable": token.refreshable(time.time()),
        "store": backend,
        "exported": exported,
    })


def _remote_port(args: argparse.Namespace) -> int | None:
    """The ``--remote`` port (``--port``, ``$SSOCRED_LOGIN_PORT``, the default), or None for a local login."""
    from ssocred.usecases.remote_login import login_port

    port = getattr(args, "port", None)
    if not getattr(args, "remote", False):
        if port is not None:
            raise UsageError("--port applies only with --remote", fix="add --remote, or leave --port out")
        return None
    return login_port(port, os.environ)


def _device_code_command(args: argparse.Namespace) -> str:
    """``ssocred login --sso-session corp --use-device-code``: the fallback, with the same selection."""
    import shlex

    chosen = ["--profile", args.profile] if args.profile else ["--sso-session", args.sso_session] \
        if args.sso_session else []
    return shlex.join(["ssocred", "login", *chosen, "--use-device-code"])
