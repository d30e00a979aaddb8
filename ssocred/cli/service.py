"""``ssocred service install | uninstall | status``: the daemon as a systemd user service or launchd agent.

Example: ``ssocred service install --dry-run`` prints the unit files and the commands, and changes nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys

from ssocred import socket_protocol
from ssocred.adapters import service_manager
from ssocred.cli.render import text_service
from ssocred.cliargs import Parser
from ssocred.errors import EXIT_INTERRUPTED, EXIT_USAGE, ServiceError, SsocredError


def build_parser() -> argparse.ArgumentParser:
    """The ``ssocred service`` parser, e.g. ``build_parser().parse_args(["status", "--json"])``."""
    parser = Parser(
        prog="ssocred service",
        description="Run `ssocred daemon` in the background with your session: systemd user units on Linux "
        "(socket-activated), a launchd agent on macOS. No root needed.",
    )
    parser.add_argument("action", choices=("install", "uninstall", "status"),
                        help="install and start, stop and remove, or show the state")
    parser.add_argument("--dry-run", action="store_true", help="print the files and the commands; change nothing")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--platform", choices=tuple(service_manager.PLATFORMS), help=argparse.SUPPRESS)
    return parser


def main(argv: list[str]) -> int:
    """``ssocred service ...``; returns the exit code, e.g. ``main(["install", "--dry-run"])`` is 0."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        platform = args.platform or service_manager.host_platform()
        if args.action == "status":
            info = service_manager.status(platform)
            print(json.dumps(info, indent=2) if args.json else text_service(info))
            return 0
        steps = service_manager.plan(platform, args.action)
        if not args.dry_run and steps:
            tool = service_manager.TOOLS[platform]
            if shutil.which(tool) is None:
                raise ServiceError(f"{tool} not found: nothing here can run {service_manager.PLATFORMS[platform]}",
                                   fix="start `ssocred daemon` from your session's autostart instead")
            service_manager.apply(steps)
    except SsocredError as exc:
        print(f"ssocred: {exc.line()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("ssocred: interrupted; the files were left as they were", file=sys.stderr)
        return EXIT_INTERRUPTED
    if args.json:
        print(json.dumps({"action": args.action, "platform": platform, "dry_run": args.dry_run,
                          "steps": [s.as_json() for s in steps], "socket": socket_protocol.socket_path()}, indent=2))
    elif args.dry_run:
        print("\n".join(s.script() for s in steps) or f"# ssocred service is not installed; nothing to {args.action}")
    elif not steps:
        print("ssocred service is not installed; nothing to do")
    else:
        print("\n".join(s.done() for s in steps))
        if args.action == "install":
            print(f"the daemon runs with your session and listens on {socket_protocol.socket_path()}")
    return 0
