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
    from ssocred.adapters.store import Store
    from ssocred.process_args import Request


#: Allocations between young collections in this process (Python's default is 700).
_GC_YOUNG = 50_000


def resolve(request: Request) -> str:
    """The stdout text for the requested role (an SSO role or a chained one): ``output`` of its credentials."""
    from ssocred.socket_protocol import forwarded_socket

    forwarded = forwarded_socket()
    if forwarded is not None:
        return _forwarded_text(request, forwarded)
    from ssocred.adapters.keyring_io import use_remembered_backend
    from ssocred.adapters.store import Store
    from ssocred.errors import LoginRequired
    from ssocred.model.sso import RoleCredentials, process_text

    named = request.named()
    if named is not None:
        # The lines that populate writes name the role: no config file to read, no chain to resolve.
        from ssocred.usecases.credentials import role_credentials

        session, may_login = named[0], request.login

        def credentials() -> RoleCredentials:
            return role_credentials(store, *named)
    else:
        from ssocred.model.chain import target_key
        from ssocred.usecases.chain import credentials_for, target_for

        target, may_login = target_for(request)
        session = target_key(target)[0]

        def credentials() -> RoleCredentials:
            return credentials_for(store, target)

    use_remembered_backend()
    store = Store()
    try:
        creds = credentials()
    except LoginRequired:
        if not may_login:
            raise
        _login_on_tty(store, session)
        creds = credentials()
    return process_text(creds)


def _forwarded_text(request: Request, path: str) -> str:
    """The answer of the daemon forwarded to this host (``ssh -R``): nothing of this host's keyring is used."""
    from ssocred.model.config import SsoTarget
    from ssocred.model.sso import process_text
    from ssocred.usecases import forwarded
    from ssocred.usecases.chain import target_for

    named = request.named()
    target = SsoTarget(*named) if named is not None else target_for(request)[0]
    if isinstance(target, SsoTarget):
        return forwarded.role_text(path, target)[0]
    return process_text(forwarded.credentials_for(path, target))


def _login_on_tty(store: Store, session: str) -> None:
    """Run the login with its prompts on /dev/tty: botocore captures stderr on success."""
    from ssocred.adapters import config_file
    from ssocred.model.config import region_problem
    from ssocred.usecases.login import LoginRequest, login
    from ssocred.usecases.tokens import login_required

    cfg = config_file.load()
    t = cfg.resolve_session(session)
    problem = region_problem(cfg, t, None)
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
    import gc

    # A cache hit is a burst of imports that leaves no garbage worth collecting; collecting during it
    # costs a tenth of its time. Rarer young collections still keep a fetch's memory in check.
    gc.set_threshold(_GC_YOUNG, *gc.get_threshold()[1:])
    from ssocred.errors import EXIT_INTERRUPTED, SsocredError
    from ssocred.process_args import USAGE, parse

    try:
        request = parse(argv)
        if request.help:
            sys.stdout.write(USAGE)
            return 0
        text = resolve(request)
    except SsocredError as exc:
        sys.stderr.write(exc.stderr_line())
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("ssocred: interrupted\n")
        return EXIT_INTERRUPTED
    sys.stdout.write(text)
    sys.stdout.flush()
    from ssocred.usecases.unsaved import warning_lines

    sys.stderr.write("".join(warning_lines()))
    return 0
