"""``ssocred service install | uninstall | status``: the daemon as a systemd user service or launchd agent.

Example: ``ssocred service install --dry-run`` prints the unit files and the commands, and changes nothing;
``ssocred service install --store memory`` runs a daemon that keeps the tokens in its memory only.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from typing import Any

from ssocred import socket_protocol
from ssocred.adapters import service_manager
from ssocred.cliargs import Parser
from ssocred.errors import EXIT_INTERRUPTED, EXIT_USAGE, ServiceError, SsocredError
from ssocred.socket_protocol import STORE_KEYRING, STORE_MEMORY
from ssocred.usecases import autostart

#: Where the installed daemon keeps tokens, by its ``--store``, in the words of the reports.
_KEPT = {STORE_KEYRING: "the OS keyring", STORE_MEMORY: "its memory only (a restart means a new login)"}


def build_parser() -> argparse.ArgumentParser:
    """The ``ssocred service`` parser, e.g. ``build_parser().parse_args(["status", "--json"])``."""
    parser = Parser(
        prog="ssocred service",
        description="Run `ssocred daemon` in the background with your session: systemd user units on Linux "
        "(socket-activated), a launchd agent on macOS. No root needed.",
    )
    parser.add_argument("action", choices=("install", "uninstall", "status"),
                        help="install and start, stop and remove, or show the state")
    parser.add_argument("--store", choices=service_manager.STORES,
                        help="with install: where the daemon keeps tokens, the OS keyring or only its memory, for "
                        "machines without a keyring (`ssocred daemon --store memory`); default: the installed "
                        "service's, else keyring")
    parser.add_argument("--dry-run", action="store_true", help="print the files and the commands; change nothing")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--platform", choices=tuple(service_manager.PLATFORMS), help=argparse.SUPPRESS)
    return parser


def main(argv: list[str]) -> int:
    """``ssocred service ...``; returns the exit code, e.g. ``main(["install", "--dry-run"])`` is 0."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.store is not None and args.action != "install":
            parser.error(f"--store goes with install only ({args.action} acts on whichever daemon is installed)")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    store: str | None = args.store
    try:
        platform = args.platform or service_manager.host_platform()
        if args.action == "install" and store is None:
            # Reinstalling (an upgrade, say) keeps the installed store: a memory daemon's restart ends its sessions.
            store = service_manager.installed_store(platform) or STORE_KEYRING
        if args.action == "status":
            info = service_manager.status(platform)
            print(json.dumps(info, indent=2) if args.json else text_service(info))
            return 0
        if args.action == "uninstall":
            store = service_manager.installed_store(platform)  # None: nothing is installed
        steps = service_manager.plan(platform, args.action, store or STORE_KEYRING)
        stopped = None
        if not args.dry_run and steps:
            tool = service_manager.TOOLS[platform]
            if shutil.which(tool) is None:
                raise ServiceError(f"{tool} not found: nothing here can run {service_manager.PLATFORMS[platform]}",
                                   fix="start `ssocred daemon` from your session's autostart instead")
        if args.action == "install" and steps:
            stopped = autostart.make_way_for_service(dry_run=args.dry_run)
        if not args.dry_run and steps:
            service_manager.apply(steps)
    except SsocredError as exc:
        print(f"ssocred: {exc.line()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("ssocred: interrupted; the files were left as they were", file=sys.stderr)
        return EXIT_INTERRUPTED
    if args.json:
        print(json.dumps({"action": args.action, "platform": platform, "store": store, "dry_run": args.dry_run,
                          "steps": [s.as_json() for s in steps], "socket": socket_protocol.socket_path(),
                          "stopped_autostarted_daemon": stopped}, indent=2))
    elif args.dry_run:
        if args.action == "install" and store:
            print(f"# the daemon keeps tokens in {_KEPT[store]}: --store {store}")
        if stopped is not None:
            print(f"kill -TERM {stopped}  # the autostarted daemon: the service's takes over")
        print("\n".join(s.script() for s in steps) or f"# ssocred service is not installed; nothing to {args.action}")
    elif not steps:
        print("ssocred service is not installed; nothing to do")
    else:
        if stopped is not None:
            print(f"stopped the autostarted daemon (pid {stopped}): the service's daemon takes over")
        print("\n".join(s.done() for s in steps))
        if args.action == "install":
            print(f"the daemon runs with your session, keeps tokens in {_KEPT[store or STORE_KEYRING]} and listens on "
                  f"{socket_protocol.socket_path()}")
    return 0


def text_service(info: dict[str, Any]) -> str:
    """``ssocred service status``: ``ssocred.service: active, enabled``, one line a unit or file."""
    lines = [f"platform: {info['platform']} ({info['manager']})"]
    lines += [f"{path}: {state}" for path, state in info["files"].items()]
    store = info.get("store")
    if store:
        lines.append(f"store: {store}: the daemon keeps tokens in {_KEPT[store]}")
    for unit, state in info.get("units", {}).items():
        lines.append(f"{unit}: {state['active']}, {state['enabled']}")
    if "agent" in info:
        agent = info["agent"]
        extra = "".join(f", {k} {agent[k]}" for k in ("state", "pid") if k in agent)
        lines.append(f"{info['label']}: {'loaded' if agent['loaded'] else 'not loaded'}{extra}")
    lines.append(f"socket: {info['socket']} ({'present' if info['socket_present'] else 'absent'})")
    if "outdated" in info["files"].values():
        again = "ssocred service install" + (f" --store {store}" if store and store != STORE_KEYRING else "")
        lines.append(f"(outdated: run `{again}` again to rewrite the files)")
    return "\n".join(lines)
