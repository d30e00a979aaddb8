"""Both ends of daemon forwarding: this host asking a forwarded daemon, and this host's daemon offering one.

On the remote host, ``credentials_for(path, target)`` resolves nothing through the keyring: it sends
the SSO role (session, its start URL and region from this host's config, account, role) to the
socket ``ssh -R`` forwarded (``socket_protocol.forwarded_socket``) and gets ``ssocred process``'s
answer; a chained profile's AssumeRole steps run here, signed with that answer, uncached (this host
has no store). On the laptop, ``offer`` saves a forward and asks the running daemon to listen for it.

Example: ``credentials_for("/tmp/ssocred-me.sock", SsoTarget("corp", "111122223333", "ReadOnly")).role_name``
"""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING

from ssocred import socket_protocol
from ssocred.errors import ServiceError, SsocredError, UsageError, from_reply
from ssocred.model.chain import Chain
from ssocred.model.sso import RoleCredentials, parse_time

if TYPE_CHECKING:
    from pathlib import Path

    from ssocred.model.chain import Target
    from ssocred.model.config import SsoTarget
    from ssocred.model.forward import Forward, Rule


def credentials_for(path: str, target: Target, *, config_path: Path | None = None) -> RoleCredentials:
    """Credentials for ``target`` from the daemon forwarded at ``path`` (a chain's steps assumed here).

    Example: ``credentials_for(forwarded_socket(), target_for(Request(profile="dev"))[0])``
    """
    if isinstance(target, Chain):
        from ssocred.adapters import sts

        source = credentials_for(path, target.parent(), config_path=config_path)
        config_file = str(config_path) if config_path is not None else None
        try:
            return sts.assume_role(source, target.last, config_file=config_file)[0]
        except sts.SourceRejected as exc:
            raise ServiceError(f"STS refused the forwarded credentials of the source role for "
                               f"{target.last.role_arn} ({exc})", fix="check the role's trust policy") from None
    return role_text(path, target, config_path=config_path)[1]


def role_text(path: str, target: SsoTarget, *, config_path: Path | None = None) -> tuple[str, RoleCredentials]:
    """``ssocred process``'s output for an SSO role, from the forwarded daemon, and its credentials.

    Example: ``role_text(path, SsoTarget("corp", "111122223333", "ReadOnly"))[0].startswith('{"Version": 1')``
    """
    start_url, region = _session_settings(target.session, config_path)
    request = socket_protocol.role_request(target.session, target.account_id, target.role_name, start_url, region)
    reply = socket_protocol.exchange(request.encode(), path)
    if reply is None:
        raise ServiceError(f"the daemon forwarded to {path} did not answer",
                           fix="reconnect with `ssocred forward HOST` (or ssh with its RemoteForward), "
                               "or remove the stale socket")
    code, body = reply
    text = body.decode("utf-8", "replace")
    if code:
        said = text.strip().removeprefix("ssocred: ")
        raise from_reply(code, said[:1000] or "the forwarded daemon refused the request")
    return text, _parse(text, target)


def _parse(text: str, target: SsoTarget) -> RoleCredentials:
    try:
        data = json.loads(text)
        return RoleCredentials(data["AccessKeyId"], data["SecretAccessKey"], data["SessionToken"],
                               parse_time(data["Expiration"]), str(data.get("AccountId") or target.account_id),
                               target.role_name, time.time())
    except (ValueError, KeyError, TypeError):
        raise ServiceError("the forwarded daemon's answer is not credentials",
                           fix="use the same ssocred version on both hosts") from None


def _session_settings(session: str, config_path: Path | None) -> tuple[str, str]:
    """The session's start URL and region in this host's config; empty when it has no such session."""
    from ssocred.adapters import config_file

    try:
        resolved = config_file.load(config_path).resolve_session(session)
    except SsocredError:
        return "", ""  # the daemon matches by name alone
    return resolved.start_url, resolved.region


def offer(name: str, rules: tuple[Rule, ...] | None) -> tuple[Forward, str, list[str] | None]:
    """Save forward ``name`` (``rules`` None: keep its saved allow-list) and ask the daemon to listen for it.

    Returns the forward, its local socket, and the forwards the daemon now listens for (None: no
    daemon answered; it listens for them when it starts). Example: ``offer("box", parse_rules(["1111…"]))``
    """
    from ssocred.adapters import forwards
    from ssocred.model.forward import Forward

    saved = forwards.load()
    old = next((f for f in saved if f.name == name), None)
    if rules is None:
        if old is None:
            raise UsageError(f"forward '{name}' is new: say what it may ask for",
                             fix="add --allow ACCOUNT[:ROLE] (repeatable; '*' allows every role of every account)")
        rules = old.rules
    forward = Forward(name, rules)
    forwards.save([forward if f.name == name else f for f in saved] + ([] if old else [forward]))
    return forward, forwards.socket_path(name), reload()


def remove(name: str) -> bool:
    """Forget forward ``name`` and stop its listener: whether there was one. Example: ``remove("box")``"""
    from ssocred.adapters import forwards

    saved = forwards.load()
    kept = [f for f in saved if f.name != name]
    if len(kept) == len(saved):
        return False
    forwards.save(kept)
    reload()
    return True


def listing() -> list[tuple[Forward, str]]:
    """The saved forwards with their local sockets: ``[(Forward("box", ...), ".../ssocred/forward/box.sock")]``."""
    from ssocred.adapters import forwards

    return [(f, forwards.socket_path(f.name)) for f in forwards.load()]


def reload() -> list[str] | None:
    """Ask the running daemon to listen for the saved forwards: their names, or None when no daemon answers."""
    request = json.dumps({"v": socket_protocol.PROTOCOL_VERSION, "op": "forward-reload",
                          "service": socket_protocol.keyring_service(),
                          "backend": os.environ.get("PYTHON_KEYRING_BACKEND", "")}) + "\n"
    reply = socket_protocol.exchange(request.encode())
    if reply is None or reply[0] != 0:
        return None
    try:
        names = json.loads(reply[1]).get("listening")
    except (ValueError, AttributeError):
        return None
    return [str(n) for n in names] if isinstance(names, list) else None
