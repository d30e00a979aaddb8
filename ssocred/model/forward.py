"""Forwarded daemons: what a socket forwarded to another host may ask for, and the ``ssh`` lines that forward it.

A *forward* is a named listener of the daemon (``<runtime dir>/forward/<name>.sock``) with an
allow-list of ``ACCOUNT[:ROLE]`` rules; ``ssh -R`` connects a socket on the remote host to it,
the way ssh-agent forwarding does. The remote host's ``ssocred`` resolves its own profile and
asks for one role; the daemon answers only roles the list allows, for sessions it holds.

Example: ``Forward("build-box", parse_rules(["111122223333:ReadOnly"])).allows("111122223333", "ReadOnly")``
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ssocred.errors import UsageError

#: Where ``ssh -R`` puts the socket on the remote host by default: ``%r`` is the remote user name,
#: which ssh expands itself. ``/tmp`` exists everywhere; only its owner can create a socket owned by
#: them there, and the remote ``ssocred`` trusts only a socket of its own user (``socket_protocol``).
REMOTE_SOCKET = "/tmp/ssocred-%r.sock"  # noqa: S108 - the remote ssocred checks the socket's owner
ANY = "*"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")
_ACCOUNT = re.compile(r"\d{12}")
_ROLE = re.compile(r"[\w+=,.@-]{1,64}")


@dataclass(frozen=True)
class Rule:
    """One allow-list entry: ``Rule("111122223333", "ReadOnly")``; ``ANY`` matches every account or role."""

    account: str
    role: str

    def matches(self, account: str, role: str) -> bool:
        """Whether the rule covers ``role`` in ``account``: ``Rule(ANY, "ReadOnly").matches("1…", "ReadOnly")``."""
        return self.account in (ANY, account) and self.role in (ANY, role)

    def __str__(self) -> str:
        return self.account if self.role == ANY and self.account != ANY else f"{self.account}:{self.role}"


@dataclass(frozen=True)
class Forward:
    """A forwarded listener and its allow-list: ``Forward("build-box", (Rule("111122223333", ANY),))``."""

    name: str
    rules: tuple[Rule, ...]

    def allows(self, account: str, role: str) -> bool:
        """Whether a remote request for ``role`` in ``account`` is answered: ``fwd.allows("1111…", "Dev")``."""
        return any(rule.matches(account, role) for rule in self.rules)

    def to_dict(self) -> dict[str, Any]:
        """The stored form: ``{"name": "build-box", "allow": ["111122223333:ReadOnly"]}``."""
        return {"name": self.name, "allow": [str(rule) for rule in self.rules]}


def forward_name(text: str) -> str:
    """``text`` when it may name a forward (letters, digits, ``.``, ``_``, ``-``; at most 40), else UsageError.

    Example: ``forward_name("build-box") == "build-box"``
    """
    if not _NAME.fullmatch(text):
        raise UsageError(f"{text!r} cannot name a forward: use letters, digits, '.', '_' and '-' (at most 40)",
                         fix="pass --name with a short name such as build-box")
    return text


def name_for_host(host: str) -> str:
    """A forward name made from an ssh destination: ``name_for_host("me@build.example.com") == "build.example.com"``."""
    bare = host.rpartition("@")[2]
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", bare).strip("-._")[:40]
    return cleaned or "remote"


def parse_rule(text: str) -> Rule:
    """``ACCOUNT``, ``ACCOUNT:ROLE``, ``*:ROLE`` or ``*`` as a Rule; UsageError otherwise.

    Example: ``parse_rule("111122223333:ReadOnly") == Rule("111122223333", "ReadOnly")``
    """
    account, _, role = text.strip().partition(":")
    role = role or ANY
    if not (account == ANY or _ACCOUNT.fullmatch(account)) or not (role == ANY or _ROLE.fullmatch(role)):
        raise UsageError(f"--allow {text!r} is not ACCOUNT[:ROLE] (a 12-digit account id or '*', a role name or '*')",
                         fix="for example: --allow 111122223333:ReadOnly")
    return Rule(account, role)


def parse_rules(texts: Iterable[str]) -> tuple[Rule, ...]:
    """The rules of ``--allow`` values, without repeats: ``parse_rules(["1111…:Dev", "1111…:Dev"])`` has one."""
    rules: list[Rule] = []
    for text in texts:
        rule = parse_rule(text)
        if rule not in rules:
            rules.append(rule)
    return tuple(rules)


def forward_from_dict(data: Any) -> Forward | None:
    """A stored forward, or None when ``data`` is not one: ``forward_from_dict({"name": "b", "allow": ["*"]})``."""
    try:
        return Forward(forward_name(data["name"]), parse_rules(data["allow"]))
    except (KeyError, TypeError, UsageError):
        return None


def ssh_command(host: str, local_socket: str, *, remote_socket: str = REMOTE_SOCKET,
                extra: Iterable[str] = ()) -> list[str]:
    """The ``ssh`` argv that forwards ``local_socket`` to ``remote_socket`` on ``host``.

    ``StreamLocalBindUnlink`` replaces a socket a previous connection left on the remote host;
    ``ExitOnForwardFailure`` makes a forward that cannot be set up an error rather than a silent shell.
    Example: ``ssh_command("box", "/run/user/1000/ssocred/forward/box.sock")[-1] == "box"``
    """
    return ["ssh", "-o", "ExitOnForwardFailure=yes", "-o", "StreamLocalBindUnlink=yes",
            "-R", f"{remote_socket}:{local_socket}", *extra, host]


def ssh_config(host: str, local_socket: str, *, remote_socket: str = REMOTE_SOCKET) -> str:
    """The ``~/.ssh/config`` block that forwards the daemon on every connection to ``host``.

    Example: ``ssh_config("box", "/run/user/1000/ssocred/forward/box.sock").startswith("Host box")``
    """
    return (f"Host {host.rpartition('@')[2]}\n"
            f"    RemoteForward {remote_socket} {local_socket}\n"
            "    StreamLocalBindUnlink yes\n"
            "    ExitOnForwardFailure yes\n")


def shell_line(argv: Iterable[str]) -> str:
    """``argv`` as one shell line: ``shell_line(["ssh", "-R", "a b"]) == "ssh -R 'a b'"``."""
    return " ".join(shlex.quote(arg) for arg in argv)
