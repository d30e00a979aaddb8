"""``ssocred emulator`` / ``python -m ssocred.emulator``: run the emulator until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Any, NoReturn

from ssocred.emulator.directory import FORMAT_HELP, generate, load, seeded
from ssocred.emulator.server import Emulator
from ssocred.emulator.settings import Settings

_EPILOG = (
    'On start one line is printed to stdout: {"url": "http://127.0.0.1:PORT"}.\n'
    "Point clients at it with AWS_ENDPOINT_URL_SSO_OIDC, AWS_ENDPOINT_URL_SSO and AWS_ENDPOINT_URL_STS.\n"
    "Control: GET /_stats, POST /_reset, POST /_revoke, and POST /_control with a JSON object of\n"
    "any of: fail_rate, throttle_rate, latency_ms, token_ttl, cred_ttl, registration_ttl,\n"
    "device_ttl, code_ttl, rotate, deny_authorize, manual_approve, approve_after_polls,\n"
    "deny_assume_role (a list of role ARNs whose AssumeRole is refused with AccessDenied).\n"
    "POST /_directory with a directory (format below) replaces the accounts and roles at run time.\n\n"
    + FORMAT_HELP
)


def _bounded(kind: type[int] | type[float], low: float, high: float) -> Any:
    """An argparse type: a number from ``low`` to ``high``; anything else is a usage error."""

    def check(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a {'whole ' if kind is int else ''}number: {text!r}") from None
        if not (math.isfinite(value) and low <= value <= high):
            raise argparse.ArgumentTypeError(f"must be from {low:g} to {high:g}, not {text!r}")
        return value

    return check


_count = _bounded(int, 0, 1_000_000)
_port = _bounded(int, 0, 65535)
_seconds = _bounded(int, 1, 10 * 365 * 86400)
_rate = _bounded(float, 0, 1)
_SEEN = "_options_seen"


class _Once(argparse.Action):
    """Refuses a repeated option, as every ssocred command does (the emulator imports nothing of ssocred)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        seen: set[int] = vars(namespace).setdefault(_SEEN, set())
        if option_string is not None and id(self) in seen:
            parser.error(f"{option_string} is given more than once")
        seen.add(id(self))
        super().__call__(parser, namespace, values, option_string)


class _Parser(argparse.ArgumentParser):
    """Each option at most once, no abbreviations, errors in one line with exit code 2."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_abbrev=False, **kwargs)
        for name in (None, "store", "store_true"):
            action = self._registry_get("action", name)
            self.register("action", name, type(f"Once{action.__name__}", (_Once, action), {}))

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        vars(parsed).pop(_SEEN, None)
        return parsed, extras

    def error(self, message: str) -> NoReturn:
        shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
        self.exit(2, f"ssocred emulator: {shown}; see: {self.prog} --help\n")


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    parser = _Parser(
        prog="ssocred emulator",
        description="A local AWS IAM Identity Center emulator: sso-oidc, SSO portal, STS (GetCallerIdentity, "
                    "AssumeRole).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--port", type=_port, default=0, metavar="N", help="port on 127.0.0.1, 0 to 65535 (default 0: a free port)")
    add("--accounts", type=_bounded(int, 0, 100_000), default=None, metavar="N",
        help="generated directory: number of accounts (default 3)")
    add("--roles", type=_bounded(int, 0, 1000), default=None, metavar="M",
        help="generated directory: roles per account (default 2)")
    add("--directory", metavar="FILE", help="load accounts, roles and user from a JSON file (format below)")
    add("--token-ttl", type=_seconds, default=3600, metavar="SEC", help="access token lifetime (default 3600)")
    add(
        "--cred-ttl",
        type=_seconds,
        default=3600,
        metavar="SEC",
        help="role credential lifetime (default 3600)",
    )
    add(
        "--registration-ttl",
        type=_seconds,
        default=90 * 86400,
        metavar="SEC",
        help="client registration lifetime (default 90 days)",
    )
    add("--device-ttl", type=_seconds, default=600, metavar="SEC", help="device code lifetime (max 600)")
    add(
        "--code-ttl",
        type=_seconds,
        default=300,
        metavar="SEC",
        help="authorization code lifetime (default 300)",
    )
    add("--no-rotate", action="store_true", help="keep refresh tokens valid after use (default: rotate)")
    add(
        "--approve-after-polls",
        type=_count,
        default=1,
        metavar="N",
        help="device flow: approve once N token polls were made (default 1; 0 = at once)",
    )
    add("--manual-approve", action="store_true", help="wait for a click on Allow/Deny in a browser")
    add("--fail-rate", type=_rate, default=0.0, metavar="P", help="share of API requests answered 500")
    add("--throttle-rate", type=_rate, default=0.0, metavar="P", help="share of API requests answered 429")
    add("--latency-ms", type=_bounded(int, 0, 600_000), default=0, metavar="N",
        help="delay added to each API request")
    add("--seed", type=_bounded(int, -(2**63), 2**63 - 1), default=None, metavar="N",
        help="seed for fault injection and generated ids")
    add("--verbose", action="store_true", help="log each request (method, path, status) to stderr")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the emulator in the foreground; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.directory and (args.accounts is not None or args.roles is not None):
        parser.error("--directory cannot be combined with --accounts or --roles")
    if args.device_ttl > 600:
        parser.error("--device-ttl must be at most 600")
    try:
        if args.directory:
            directory = load(args.directory)
        else:
            accounts = 3 if args.accounts is None else args.accounts
            roles = 2 if args.roles is None else args.roles
            directory = generate(accounts, roles, seeded("directory", args.seed))
    except ValueError as exc:
        print(f"ssocred emulator: {exc}", file=sys.stderr)
        return 2
    settings = Settings(
        token_ttl=args.token_ttl,
        cred_ttl=args.cred_ttl,
        registration_ttl=args.registration_ttl,
        device_ttl=args.device_ttl,
        code_ttl=args.code_ttl,
        rotate=not args.no_rotate,
        approve_after_polls=args.approve_after_polls,
        manual_approve=args.manual_approve,
        fail_rate=args.fail_rate,
        throttle_rate=args.throttle_rate,
        latency_ms=args.latency_ms,
    )
    try:
        emulator = Emulator(settings, directory, port=args.port, seed=args.seed, verbose=args.verbose)
    except OSError as exc:
        print(f"ssocred emulator: cannot listen on 127.0.0.1:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    return _serve(emulator)


def _serve(emulator: Emulator) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    in_main = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)} if in_main else {}
    try:
        emulator.start()
        sys.stdout.write(json.dumps({"url": emulator.url}) + "\n")
        sys.stdout.flush()
        while not stop.wait(0.2):
            pass
    finally:
        emulator.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
