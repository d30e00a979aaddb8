"""The ``ssocred`` command line: argparse in, data out, rendered as text or JSON in one place.

Example: ``ssocred status --json``
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ssocred import __version__
from ssocred.cli.render import ENV_FORMATS, render
from ssocred.cliargs import Parser
from ssocred.errors import EXIT_INTERRUPTED, SsocredError
from ssocred.usecases.remote_login import DEFAULT_PORT as DEFAULT_LOGIN_PORT
from ssocred.usecases.remote_login import port_number

Handler = Callable[[argparse.Namespace], Any]

EPILOG = """exit codes: 0 ok, 1 login required, 2 usage, 3 config error, 4 access denied,
5 network or service error, 6 credential store unavailable, 130 interrupted"""
#: Output formats of the AWS CLI, for ``output = FMT`` in written profiles.
OUTPUT_FORMATS = ("json", "yaml", "yaml-stream", "text", "table")


def _selector(p: argparse.ArgumentParser, *, allow_all: bool = False) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--profile", metavar="P", type=_name, help="a profile in ~/.aws/config (default: $AWS_PROFILE)")
    group.add_argument("--sso-session", metavar="S", type=_name, help="an [sso-session S] section in ~/.aws/config")
    if allow_all:
        group.add_argument("--all", action="store_true", help="every stored session")


def _target(p: argparse.ArgumentParser) -> None:
    # Plain strings: the ssocred process grammar checks them (commands._role_credentials).
    p.add_argument("--profile", metavar="P", help="a profile using ssocred (default: $AWS_PROFILE)")
    p.add_argument("--sso-session", metavar="S", help="with --account-id and --role-name instead of --profile")
    p.add_argument("--account-id", metavar="A", help="the AWS account id")
    p.add_argument("--role-name", metavar="R", help="the role (permission set) name")


def _credentials_file(args: argparse.Namespace) -> Any:
    from ssocred.cli.exports import credentials_file

    return credentials_file(args)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (``ssocred --help``)."""
    from ssocred.cli import commands, login

    parser = Parser(
        prog="ssocred",
        description="AWS IAM Identity Center (AWS SSO) credentials for every SDK: log in once, "
        "tokens in the OS keyring, role credentials through credential_process.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ssocred {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, handler: Handler, help_text: str, description: str | None = None) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=description or help_text, epilog=EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(func=handler)
        return p

    p = add("login", login.login, "log in to an SSO session and store the token in the OS keyring",
            "Log in (PKCE in a browser; device code on remote/headless machines or with "
            "--use-device-code) and keep the token, refresh token and client registration in the OS keyring.\n\n"
            "On an SSH host without a browser, --remote runs the browser login through a forwarded port:\n"
            "it listens on 127.0.0.1:PORT here (--port, else $SSOCRED_LOGIN_PORT, else "
            f"{DEFAULT_LOGIN_PORT}), opens no browser,\n"
            "and prints the `ssh -L PORT:127.0.0.1:PORT HOST` line to run on your laptop and the URL to open\n"
            "in the laptop's browser. Where no port can be forwarded, use --use-device-code.")
    _selector(p)
    flow = p.add_mutually_exclusive_group()
    flow.add_argument("--use-device-code", action="store_true", help="use the device code flow (any device)")
    flow.add_argument("--remote", action="store_true",
                      help="browser login from another machine through `ssh -L` (prints what to run there)")
    p.add_argument("--port", type=_port, metavar="N",
                   help=f"with --remote: the loopback port to listen on (default $SSOCRED_LOGIN_PORT, else "
                   f"{DEFAULT_LOGIN_PORT})")
    p.add_argument("--no-browser", action="store_true", help="print the URL instead of opening a browser")
    p.add_argument("--timeout", type=_positive_float, default=600.0, metavar="SEC", help="give up after SEC (600)")
    p.add_argument("--export-aws-cli-cache", action="store_true",
                   help="also keep a copy of the access token (never the refresh token) in "
                   "~/.aws/sso/cache for the AWS CLI and native SSO profiles")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = add("logout", commands.logout, "log out: revoke the token and wipe the stored session",
            "Call the portal's Logout, then delete the session's keyring items and index entries.")
    _selector(p, allow_all=True)
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = add("status", commands.status, "show sessions, token expiry and cached role credentials (no secrets)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = add("import", commands.import_token, "take a token that `aws sso login` left in ~/.aws/sso/cache",
            "Copy the token (and refresh token) that the AWS CLI cached for a session into the OS keyring.")
    _selector(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = add("process", commands.delegated, "print role credentials for credential_process (see README)",
            "Used as `credential_process = ssocred process ...` in ~/.aws/config.")
    p.add_argument("rest", nargs=argparse.REMAINDER)

    p = add("env", commands.env, "print role credentials as shell variable assignments",
            "Print AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN and "
            "AWS_CREDENTIAL_EXPIRATION for a profile, e.g. eval \"$(ssocred env --profile dev)\".")
    _target(p)
    p.add_argument("--format", choices=ENV_FORMATS, default="sh",
                   help="sh, fish or json (with the profile's region; default sh), or an AWS CLI "
                   "`configure export-credentials` format: env, env-no-export, powershell, windows-cmd, process")

    p = add("exec", commands.exec_command, "run a command with a profile's role credentials in its environment",
            "Run CMD with the AWS_* credential variables set; its exit code is passed through. "
            "Example: ssocred exec --profile dev -- terraform plan")
    _target(p)
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD ARGS...")

    p = add("console", commands.console, "open the AWS console signed in as a profile's role",
            "Sign in to the AWS console with the role's credentials (the federation endpoint's "
            "getSigninToken, then its login URL) and open it in the browser ($BROWSER is honoured); "
            "on a machine without a browser, or with --print, print the link instead. The link holds a "
            "sign-in token valid for 15 minutes: treat it as a secret. AWS_ENDPOINT_URL_SIGNIN overrides "
            "the federation endpoint (its base URL; /federation is appended).")
    _target(p)
    p.add_argument("--print", action="store_true", help="print the sign-in link instead of opening a browser")
    p.add_argument("--destination", metavar="URL", help="the console page to open (default: the console home)")
    p.add_argument("--region", metavar="R", help="the console's region (default: the profile's, else the SSO region)")

    p = add("credentials-file", _credentials_file,
            "export a role's credentials to ~/.aws/credentials, kept fresh by the daemon",
            "For tools that read only ~/.aws/credentials: write the role's credentials as a [NAME] section "
            "(default NAME: the profile), 0600, atomically, keeping comments and every other section. "
            "The daemon rewrites the section whenever it pre-fetches new credentials; logout removes it. "
            "Without a target, list what is exported. $AWS_SHARED_CREDENTIALS_FILE relocates the file.")
    _target(p)
    p.add_argument("--as", dest="as_name", metavar="NAME", help="the section's name (default: the profile's)")
    p.add_argument("--remove", action="store_true", help="remove the exported section --as NAME (or --profile P)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = add("container", commands.container, "serve a role to containers and SDKs from the daemon (HTTP endpoint)",
            "Make the running daemon serve the role on its container credentials endpoint and print "
            "AWS_CONTAINER_CREDENTIALS_FULL_URI and AWS_CONTAINER_AUTHORIZATION_TOKEN, one KEY=VALUE a line "
            "(for docker run --env-file). Every SDK then fetches fresh credentials by itself for as long as "
            "the daemon runs. The token is a secret; it ends with --revoke, a logout of the session, or the "
            "daemon. Example: docker run --network host --env-file <(ssocred container --profile dev) IMAGE")
    _target(p)
    p.add_argument("--revoke", action="store_true", help="end the role's token at once (its SDKs get 403)")
    p.add_argument("--json", action="store_true", help="print the variables as a JSON object")

    from ssocred.cli import forward

    forward.add_arguments(add("forward", forward.forward,
                              "let an SSH host use this machine's daemon (like ssh-agent forwarding)",
                              forward.DESCRIPTION))

    p = add("accounts", _accounts, "list the accounts and roles you can use",
            "Every account of an SSO session and the roles (permission sets) you can use in it "
            "(portal ListAccounts and ListAccountRoles, all pages).")
    _selector(p)
    _walk_options(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    _configure(add("configure", _configure_command,
                   "set up an SSO session and profiles (interactive, like aws configure sso)",
                   "Ask for the start URL, SSO region, session name and scopes, write the [sso-session] "
                   "section, log in, then pick an account and role (or all of them) for a profile. "
                   "Every question has a flag; with --no-input nothing is asked.\n\n"
                   "ssocred configure populate: write one profile per account and role (see its --help)."))

    p = add("whoami", _whoami, "show who a profile's credentials belong to (STS)",
            "Call STS GetCallerIdentity with the profile's credentials and print account, ARN and user id.")
    p.add_argument("--profile", metavar="P", type=_name, help="the profile to check (default: $AWS_PROFILE)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = add("discover", commands.discover,
            "admin view: Identity Center instance, accounts, permission sets and assignments",
            "With management-account (or delegated admin) credentials: the IAM Identity Center instance "
            "and its portal URL, the organization's accounts, the permission sets, and who is assigned "
            "what where. --write-config adds the [sso-session] section for the instance to ~/.aws/config.")
    p.add_argument("--profile", metavar="MGMT", type=_name,
                   help="a profile with admin credentials (default: $AWS_PROFILE)")
    p.add_argument("--write-config", action="store_true",
                   help="add an [sso-session] section for the instance to ~/.aws/config")
    p.add_argument("--session-name", metavar="NAME",
                   help="name of the written [sso-session] (default: the identity store id)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = add("doctor", commands.doctor, "diagnose configuration, login, keyring, network and access",
            "Check a profile (or SSO session) step by step: config, token, client registration, keyring, "
            "CA bundle and TLS, endpoint, role assignment, daemon and service. Each check prints pass, "
            "warn or fail with the exact fix. Exits 0 when nothing failed, else the exit code of the "
            "first failure (see exit codes).")
    _selector(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = add("emulator", commands.delegated, "run a local IAM Identity Center emulator (see --help)",
            "A local sso-oidc + SSO portal + STS server for demos and offline CI. "
            "Run `ssocred emulator --help` for its options.")
    p.add_argument("args", nargs=argparse.REMAINDER)

    p = add("daemon", commands.delegated, "run the background daemon (see --help; usually via ssocred service)",
            "Keeps SSO tokens fresh on a schedule, pre-fetches role credentials and answers "
            "`ssocred process` over a local socket. Run `ssocred daemon --help` for its options.")
    p.add_argument("args", nargs=argparse.REMAINDER)

    p = add("service", commands.delegated, "install/uninstall/show the daemon as a systemd or launchd service",
            "ssocred service install | uninstall | status [--dry-run] [--json]")
    p.add_argument("args", nargs=argparse.REMAINDER)

    p = add("demo", commands.demo, "try ssocred end to end against the local emulator (no AWS account)")
    p.add_argument("--keep", action="store_true", help="keep the throw-away directory afterwards")
    return parser


# The setup handlers import boto3 when they run; importing them here would slow every ``--help``.
def _accounts(args: argparse.Namespace) -> Any:
    from ssocred.cli import setup

    return setup.accounts(args)


def _configure_command(args: argparse.Namespace) -> Any:
    from ssocred.cli import setup

    return setup.configure(args)


def _populate(args: argparse.Namespace) -> Any:
    from ssocred.cli import setup

    return setup.populate(args)


def _whoami(args: argparse.Namespace) -> Any:
    from ssocred.cli import setup

    return setup.whoami(args)


def _walk_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-workers", type=_positive_int, default=16, metavar="N",
                   help="ListAccountRoles calls in flight at once (default 16)")
    p.add_argument("--rate", type=_positive_float, default=200.0, metavar="PER_SEC",
                   help="client-side limit on portal requests per second (default 200; throttled requests "
                   "are retried with backoff)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a number more than 0, not {text!r}")
    return value


def _port(text: str) -> int:
    try:
        return port_number(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a port from 1 to 65535, not {text!r}") from None


def _name(text: str) -> str:
    """A profile, session or role name: anything but empty."""
    if not text:
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def _account_id(text: str) -> str:
    from ssocred.process_args import is_account_id

    if not is_account_id(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an AWS account id (12 digits, e.g. 111122223333)")
    return text


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--start-url", metavar="URL", help="the AWS access portal URL (https://d-xxxxxxxxxx.awsapps.com/start)")
    p.add_argument("--sso-region", metavar="R", help="the region of IAM Identity Center (e.g. us-east-1)")
    p.add_argument("--session-name", metavar="NAME", help="name of the [sso-session] section")
    p.add_argument("--scopes", metavar="LIST", help="registration scopes, comma-separated (default sso:account:access)")
    p.add_argument("--account-id", metavar="A", type=_account_id, help="the account of the profile (12 digits)")
    p.add_argument("--role-name", metavar="R", type=_name, help="the role (permission set) of the profile")
    p.add_argument("--all", action="store_true", help="write a profile for every account and role (populate)")
    p.add_argument("--profile-name", metavar="P", help="name of the written profile")
    p.add_argument("--region", metavar="R", help="default region of the written profile(s)")
    p.add_argument("--output", choices=OUTPUT_FORMATS, help="output = FMT in the written profile(s)")
    p.add_argument("--use-device-code", action="store_true", help="log in with the device code flow")
    p.add_argument("--no-browser", action="store_true", help="print the login URL instead of opening a browser")
    p.add_argument("--no-input", action="store_true", help="never ask; missing answers are an error")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    sub = p.add_subparsers(dest="configure_command", metavar="SUBCOMMAND")
    pop = sub.add_parser(
        "populate", help="write one profile per account and role",
        description="Write one profile per account x role of an SSO session, each using "
        "credential_process = ssocred process ..., named by --template and marked as managed by ssocred "
        "(ssocred_managed = SESSION). Comments, order and other profiles in ~/.aws/config are kept; "
        "the file is replaced atomically under a lock. Template placeholders: {account_name}, "
        "{account_id}, {account_email}, {role_name}, {session}, {region}.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    pop.set_defaults(func=_populate)
    pop.add_argument("--sso-session", metavar="S", help="the [sso-session] to populate (default: the only one)")
    pop.add_argument("--template", metavar="T", default="{account_name}.{role_name}",
                     help="profile name template (default {account_name}.{role_name})")
    pop.add_argument("--region", metavar="R", help="region = R in each profile (default: the SSO region)")
    pop.add_argument("--output", choices=OUTPUT_FORMATS, help="output = FMT in each profile")
    pop.add_argument("--prune", action="store_true",
                     help="remove managed profiles whose account or role no longer exists")
    pop.add_argument("--dry-run", action="store_true", help="print the change as a diff; write nothing")
    pop.add_argument("--keep-in-sync", action="store_true",
                     help="also let the daemon do this again (with --prune) every --sync-interval and after each "
                     "login, notifying you of accounts and roles that appear or go; records "
                     "ssocred_sync_profiles = true and these options in the [sso-session]")
    _walk_options(pop)
    pop.add_argument("--json", action="store_true", help="print the result as JSON")


def _service(argv: list[str]) -> int:
    from ssocred.cli.service import main as service_main

    return service_main(argv)


#: Commands with their own argument parsers; listed in the main parser for --help.
_DELEGATED: dict[str, Callable[[list[str]], int]] = {"service": _service}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code. Expected failures print one line, never a traceback."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] in _DELEGATED:
        return _DELEGATED[args_list[0]](args_list[1:])
    parser = build_parser()
    passed: list[str] = []
    if args_list[:1] == ["forward"] and "--" in args_list:  # the rest is ssh's, options and all
        cut = args_list.index("--")
        args_list, passed = args_list[:cut], args_list[cut + 1:]
    args = parser.parse_args(args_list)
    if args.command == "forward":
        args.ssh_args = passed
    try:
        result = args.func(args)
    except SsocredError as exc:
        print(f"ssocred: {exc.line()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("ssocred: interrupted; nothing was changed", file=sys.stderr)
        return EXIT_INTERRUPTED
    from ssocred.usecases.unsaved import warning_lines

    sys.stderr.write("".join(warning_lines()))
    if isinstance(result, int):
        return result
    render(result, as_json=getattr(args, "json", False), out=sys.stdout)
    return 0
