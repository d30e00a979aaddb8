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
    from ssocred.store import Store

USAGE = (
    "usage: ssocred process (--profile P | --sso-session S --account-id A --role-name R) [--login]\n"
    "Prints role credentials as credential_process JSON (Version 1). With --login, a required login\n"
    "runs through the terminal (/dev/tty) instead of failing."
)
_FLAGS = {"--profile": "profile", "--sso-session": "session", "--account-id": "account", "--role-name": "role"}


def parse_args(argv: list[str]) -> dict[str, str]:
    """Parse ``--flag value`` / ``--flag=value`` pairs without argparse (import cost matters here).

    Example: ``parse_args(["--profile=dev"]) == {"profile": "dev"}``
    """
    from ssocred.errors import UsageError

    out: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-h", "--help"):
            out["help"] = "1"
        elif arg == "--login":
            out["login"] = "1"
        else:
            name, eq, value = arg.partition("=")
            key = _FLAGS.get(name)
            if key is None:
                raise UsageError(f"unknown argument '{arg}' for ssocred process", fix="see: ssocred process --help")
            if not eq:
                i += 1
                if i >= len(argv):
                    raise UsageError(f"{name} needs a value", fix="see: ssocred process --help")
                value = argv[i]
            out[key] = value
        i += 1
    return out


def target(opts: dict[str, str], config_file: Path | None = None) -> tuple[str, str, str]:
    """(session, account, role) from the arguments, or from the profile's ssocred keys.

    A profile with ``ssocred_login = true`` opts in to ``--login``: ``opts["login"]`` is set.
    ``config_file`` replaces ``$AWS_CONFIG_FILE`` (the daemon answers for the client's file).
    Example: ``target({"profile": "dev"}) == ("corp", "111122223333", "Developer")``
    """
    from ssocred.errors import UsageError

    if "profile" in opts:
        if any(k in opts for k in ("session", "account", "role")):
            raise UsageError("--profile cannot be combined with --sso-session/--account-id/--role-name")
        from ssocred import config

        cfg = config.load(config_file)
        t = cfg.ssocred_target(opts["profile"])
        if cfg.profile(opts["profile"]).values.get("ssocred_login", "").lower() in ("true", "yes", "1"):
            opts["login"] = "1"
        return t.session, t.account_id, t.role_name
    missing = [f for f, k in _FLAGS.items() if k != "profile" and k not in opts]
    if missing:
        raise UsageError(f"ssocred process needs {', '.join(missing)} (or --profile)",
                         fix="see: ssocred process --help")
    return opts["session"], opts["account"], opts["role"]


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


def resolve(opts: dict[str, str]) -> str:
    """The stdout text for the requested role: ``output`` of its credentials."""
    from ssocred.credentials import role_credentials
    from ssocred.errors import LoginRequired
    from ssocred.keyring_io import use_remembered_backend
    from ssocred.store import Store

    session, account, role = target(opts)
    use_remembered_backend()
    store = Store()
    try:
        creds = role_credentials(store, session, account, role)
    except LoginRequired:
        if "login" not in opts:
            raise
        _login_on_tty(store, session)
        creds = role_credentials(store, session, account, role)
    return output(creds)


def _login_on_tty(store: Store, session: str) -> None:
    """Run the login with its prompts on /dev/tty: botocore captures stderr on success."""
    from ssocred import config
    from ssocred.login import LoginRequest, login
    from ssocred.tokens import login_required

    try:
        tty = open("/dev/tty", "w")  # noqa: SIM115 - closed below
    except OSError:
        raise login_required(session, "needs a login and there is no terminal for it") from None
    with tty:
        t = config.load().resolve_session(session)
        login(LoginRequest(key=session, start_url=t.start_url, region=t.region, scopes=t.scopes), store, tty)


def main(argv: list[str]) -> int:
    """Run ``ssocred process``; one line on stderr and a documented exit code on failure."""
    from ssocred.errors import EXIT_INTERRUPTED, SsocredError

    try:
        opts = parse_args(argv)
        if "help" in opts:
            print(USAGE)
            return 0
        text = resolve(opts)
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
