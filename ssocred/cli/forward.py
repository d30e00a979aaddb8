"""``ssocred forward``: let an SSH host use this machine's daemon, confined to an allow-list of roles.

Example: ``ssocred forward build-box --allow 111122223333:ReadOnly`` runs ``ssh -R ... build-box``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ssocred.cli.render import Report
from ssocred.errors import ServiceError, UsageError

DESCRIPTION = (
    "Forward this machine's daemon to an SSH host, as ssh-agent forwarding does: on HOST, `ssocred process`, "
    "`env`, `exec` and `console` get role credentials from here, with no login and no keyring there. Only the "
    "roles --allow names are answered (ACCOUNT, ACCOUNT:ROLE, *:ROLE, or * for every role); every request is "
    "logged by the daemon with its peer. Anyone who is root on HOST can ask for those roles while you are "
    "connected. The forward is saved: the daemon listens for it whenever it runs, for `ssh` to connect "
    "with -R (or RemoteForward in ~/.ssh/config, see --print). Arguments after -- go to ssh.\n\n"
    "ssocred forward --list           the saved forwards\n"
    "ssocred forward --remove NAME    forget one and stop its listener"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The command's flags: ``add_arguments(sub.add_parser("forward"))``."""
    p.add_argument("host", nargs="?", metavar="HOST", help="the ssh destination ([user@]host or a Host alias)")
    p.add_argument("--allow", action="append", metavar="ACCOUNT[:ROLE]",
                   help="a role the host may ask for (repeatable; default: the forward's saved list)")
    p.add_argument("--name", metavar="NAME", help="the forward's name (default: made from HOST)")
    p.add_argument("--remote-socket", metavar="PATH", default=None,
                   help="where the socket appears on HOST (default /tmp/ssocred-%%r.sock, %%r the remote user; "
                   "the remote ssocred looks there, or at $SSOCRED_FORWARD_SOCKET)")
    p.add_argument("--print", action="store_true",
                   help="print the ssh command and the ~/.ssh/config block instead of connecting")
    p.add_argument("--list", action="store_true", help="list the saved forwards")
    p.add_argument("--remove", metavar="NAME", help="forget forward NAME and stop its listener")
    p.add_argument("--json", action="store_true", help="print the result as JSON (implies --print)")


def forward(args: argparse.Namespace) -> Report | int:
    """Run ``ssocred forward``: a Report for --list/--remove/--print/--json, else ``ssh`` in this process's place."""
    from ssocred.model.forward import REMOTE_SOCKET, forward_name, name_for_host, parse_rules, ssh_command, ssh_config
    from ssocred.usecases import forwarded

    if args.list:
        return Report("forward-list", {"forwards": [_forward_data(f, path) for f, path in forwarded.listing()]})
    if args.remove:
        name = forward_name(args.remove)
        return Report("forward-remove", {"name": name, "removed": forwarded.remove(name)})
    if not args.host:
        raise UsageError("ssocred forward needs a HOST (or --list, or --remove NAME)",
                         fix="e.g. ssocred forward build-box --allow 111122223333:ReadOnly")
    extra = list(getattr(args, "ssh_args", []))  # after --, set aside by cli.main before parsing
    name = forward_name(args.name) if args.name else name_for_host(args.host)
    rules = parse_rules(args.allow) if args.allow else None
    fwd, local, listening = forwarded.offer(name, rules)
    if listening is None:
        listening = _start_daemon()
    remote = args.remote_socket or REMOTE_SOCKET
    argv = ssh_command(args.host, local, remote_socket=remote, extra=extra)
    data = {**_forward_data(fwd, local), "host": args.host, "remote_socket": remote, "ssh_command": argv,
            "ssh_config": ssh_config(args.host, local, remote_socket=remote),
            "daemon_listening": listening is not None and name in listening}
    if args.print or args.json:
        return Report("forward", data)
    if not data["daemon_listening"]:
        raise ServiceError("no daemon runs here to answer the forwarded requests",
                           fix="start it (ssocred service install, or ssocred daemon), then run this again")
    print(f"ssocred: forwarding '{name}' ({', '.join(data['allow'])}) to {args.host}; "
          "its requests are logged by the daemon", file=sys.stderr)
    sys.stderr.flush()
    try:
        os.execvp(argv[0], argv)  # noqa: S606 - running ssh is the point
    except OSError as exc:
        raise ServiceError(f"cannot run ssh: {exc.strerror}", fix="install OpenSSH's client") from None
    return 0  # not reached


def _start_daemon() -> list[str] | None:
    """Start a daemon (where autostart may) and ask it again: the forwards it listens for, or None."""
    from ssocred.usecases import autostart, forwarded

    if autostart.decision()[0] and autostart.start():
        return forwarded.reload()
    return None


def _forward_data(fwd: Any, path: str) -> dict[str, Any]:
    return {"name": fwd.name, "allow": [str(rule) for rule in fwd.rules], "local_socket": path}
