"""``ssocred process``: the credential_process entry point, kept small and light to import.

Usage in ``~/.aws/config``::

    [profile dev]
    credential_process = ssocred process --sso-session corp --account-id 111122223333 --role-name Dev

Example: ``main(["--profile", "dev"])`` prints the credential_process JSON and returns 0.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from ssocred.errors import SsocredError
    from ssocred.model import RoleCredentials
    from ssocred.process_args import Request
    from ssocred.store import Store

#: ``(session, account id, role name)``
Role = tuple[str, str, str]


def resolve_target(request: Request, config_file: Path | None = None) -> tuple[Role, bool]:
    """The role ``request`` asks for, and whether a required login may run on the terminal.

    A login may run with ``--login``, or when the profile opts in with ``ssocred_login = true``.
    ``config_file`` replaces ``$AWS_CONFIG_FILE`` (the daemon answers for the client's file).
    Example: ``resolve_target(Request(profile="dev")) == (("corp", "111122223333", "Developer"), False)``
    """
    named = request.named()
    if named is not None:
        return named, request.login
    if request.profile is None:
        from ssocred.errors import UsageError

        raise UsageError("ssocred process needs --profile, or --sso-session, --account-id and --role-name",
                         fix="see: ssocred process --help")
    from ssocred import config

    cfg = config.load(config_file)
    t = cfg.ssocred_target(request.profile)
    opted_in = cfg.profile(request.profile).values.get("ssocred_login", "").lower() in ("true", "yes", "1")
    return (t.session, t.account_id, t.role_name), request.login or opted_in


def output(creds: RoleCredentials) -> str:
    """Everything ``ssocred process`` prints for ``creds``: the JSON object and a newline.

    Example: ``output(creds).startswith('{"Version": 1, "AccessKeyId": "ASIA')``
    """
    import json

    from ssocred.model import process_output

    return json.dumps(process_output(creds)) + "\n"


def error_output(exc: SsocredError) -> str:
    """The one stderr line of a failed ``ssocred process``: ``"ssocred: <what>; <fix>\\n"``."""
    return f"ssocred: {exc.line()}\n"


def resolve(request: Request) -> str:
    """The stdout text for the requested role: ``output`` of its credentials."""
    from ssocred.credentials import role_credentials
    from ssocred.errors import LoginRequired
    from ssocred.keyring_io import use_remembered_backend
    from ssocred.store import Store

    role, may_login = resolve_target(request)
    use_remembered_backend()
    store = Store()
    try:
        creds = role_credentials(store, *role)
    except LoginRequired:
        if not may_login:
            raise
        _login_on_tty(store, role[0])
        creds = role_credentials(store, *role)
    return output(creds)


def _login_on_tty(store: Store, session: str) -> None:
    """Run the login with its prompts on /dev/tty: botocore captures stderr on success."""
    from ssocred import config
    from ssocred.login import LoginRequest, login
    from ssocred.tokens import login_required

    cfg = config.load()
    t = cfg.resolve_session(session)
    problem = config.region_problem(cfg, t, None)
    if problem is not None:
        raise problem
    try:
        tty = open("/dev/tty", "w")  # noqa: SIM115 - closed below
    except OSError:
        raise login_required(session, "needs a login and there is no terminal for it") from None
    with tty:
        login(LoginRequest(key=session, start_url=t.start_url, region=t.region, scopes=t.scopes), store, tty)


def main(argv: list[str]) -> int:
    """Run ``ssocred process``; one line on stderr and a documented exit code on failure."""
    from ssocred.errors import EXIT_INTERRUPTED, SsocredError
    from ssocred.process_args import USAGE, parse

    try:
        request = parse(argv)
        if request.help:
            sys.stdout.write(USAGE)
            return 0
        text = resolve(request)
    except SsocredError as exc:
        sys.stderr.write(error_output(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("ssocred: interrupted\n")
        return EXIT_INTERRUPTED
    sys.stdout.write(text)
    sys.stdout.flush()
    tokens = sys.modules.get("ssocred.tokens")  # only a refresh can leave something unsaved
    if tokens is not None:
        for line in tokens.unsaved_warnings():
            sys.stderr.write(f"ssocred: warning: {line}\n")
    return 0
