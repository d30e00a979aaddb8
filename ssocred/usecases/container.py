"""Container credentials grants: a random token per role that lets any SDK fetch the role's credentials
from the daemon over HTTP (``AWS_CONTAINER_CREDENTIALS_FULL_URI`` + ``AWS_CONTAINER_AUTHORIZATION_TOKEN``).

The daemon keeps the grants in ``Grants``, in its memory only: a grant is a bearer secret for live
credentials, so it is never written anywhere, and it ends with ``revoke``, a logout of its session,
or the daemon itself. ``ssocred container`` asks the running daemon for one (``grant``) over its
socket (ops ``container`` and ``container-revoke``, see ``ssocred.socket_protocol``).

Example: ``grant(target(Request(profile="dev")))`` is ``Access("http://127.0.0.1:41234/role/9f...", "Zk...")``.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ssocred.errors import ServiceError

if TYPE_CHECKING:
    from pathlib import Path

    from ssocred.model.chain import Target
    from ssocred.process_args import Request

#: ``(session, account id, role name)``.
Role = tuple[str, str, str]

#: The variables ``ssocred container`` prints, in this order.
URI_VARIABLE = "AWS_CONTAINER_CREDENTIALS_FULL_URI"
TOKEN_VARIABLE = "AWS_CONTAINER_AUTHORIZATION_TOKEN"  # noqa: S105 - a variable's name, not a secret
#: The URL path of a grant: ``/role/<grant id>``.
PATH_PREFIX = "/role/"
OP_GRANT = "container"
OP_REVOKE = "container-revoke"


@dataclass(frozen=True)
class Grant:
    """One role's grant: ``Grant(("corp", "111122223333", "Dev"), "9f3c...", "Zk...")``.

    ``grant_id`` names it in the URL (unguessable, but not the secret); ``token`` is the secret
    the SDK sends as its ``Authorization`` header.
    """

    role: Role
    grant_id: str
    token: str

    def __repr__(self) -> str:
        return f"Grant(role={self.role!r}, grant_id={self.grant_id!r}, token=<hidden>)"


@dataclass(frozen=True)
class Access:
    """What a container needs: ``Access("http://127.0.0.1:41234/role/9f...", "Zk...").variables()``."""

    url: str
    token: str

    def variables(self) -> dict[str, str]:
        """``{"AWS_CONTAINER_CREDENTIALS_FULL_URI": url, "AWS_CONTAINER_AUTHORIZATION_TOKEN": token}``."""
        return {URI_VARIABLE: self.url, TOKEN_VARIABLE: self.token}

    def __repr__(self) -> str:
        return f"Access(url={self.url!r}, token=<hidden>)"


class Grants:
    """The daemon's grants, one per role, safe to use from many threads.

    Example: ``g = Grants(); t = g.issue(role).token; g.check(g.issue(role).grant_id, t) == role``
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_role: dict[Role, Grant] = {}
        self._by_id: dict[str, Grant] = {}

    def __len__(self) -> int:
        """How many roles are served now: ``len(grants)``."""
        with self._lock:
            return len(self._by_role)

    def issue(self, role: Role) -> Grant:
        """The role's grant, made now when it has none: ``grants.issue(("corp", "1", "Dev"))``.

        Asking again gives the same grant, so every container of a role shares one token and one revoke ends all.
        """
        with self._lock:
            found = self._by_role.get(role)
            if found is None:
                found = Grant(role, secrets.token_hex(16), secrets.token_urlsafe(32))
                self._by_role[role] = found
                self._by_id[found.grant_id] = found
            return found

    def revoke(self, session: str, account: str | None = None, role: str | None = None) -> int:
        """Drop the grant of one role, or every grant of ``session`` (account and role None): how many.

        Example: ``grants.revoke("corp")`` after a logout of session corp.
        """
        with self._lock:
            gone = [g for key, g in self._by_role.items()
                    if key[0] == session and account in (None, key[1]) and role in (None, key[2])]
            for g in gone:
                del self._by_role[g.role]
                del self._by_id[g.grant_id]
            return len(gone)

    def check(self, grant_id: str, authorization: str | None) -> Role | None:
        """The role ``authorization`` may fetch at ``grant_id``, else None: ``grants.check(gid, token)``.

        Compared in constant time; an unknown grant costs the same comparison as a known one.
        """
        with self._lock:
            found = self._by_id.get(grant_id)
        expected = found.token if found is not None else _DECOY
        given = (authorization or "").encode("utf-8", "surrogateescape")
        if hmac.compare_digest(given, expected.encode()) and found is not None and authorization is not None:
            return found.role
        return None

    def sessions(self) -> set[str]:
        """The sessions that hold grants now: ``grants.sessions() == {"corp"}``."""
        with self._lock:
            return {role[0] for role in self._by_role}


_DECOY = secrets.token_urlsafe(32)


def target(request: Request, config_path: Path | None = None) -> Target:
    """What a grant is for: ``target(Request(profile="dev")) == SsoTarget("corp", "111122223333", "Developer")``.

    The one place that turns ``--profile`` or ``--sso-session/--account-id/--role-name`` into what the
    daemon serves: an SSO role, or a chained role (``ssocred.usecases.chain``).
    """
    from ssocred.usecases.chain import target_for

    found, _may_login = target_for(request, config_path)
    return found


def grant(served: Target, config_path: Path | None = None) -> Access:
    """Ask the running daemon to serve ``served`` on its container endpoint: ``grant(target).url``.

    The daemon fetches the credentials first, so a missing login or an unassigned role fails here,
    with the exit code ``ssocred process`` would give, not later inside a container. A chain travels
    whole (the daemon reads no profile of the client's), with the config file its ``[services]`` live in.
    """
    from ssocred.adapters import paths
    from ssocred.model.chain import Chain, chain_to_dict, target_key

    extra: dict[str, object] = {}
    if isinstance(served, Chain):
        extra = {"chain": chain_to_dict(served),
                 "config": os.path.abspath(config_path or paths.aws_config_file())}
    answer = _ask(OP_GRANT, *target_key(served), extra=extra, start=True)
    url, token = answer.get("url"), answer.get("token")
    if not (isinstance(url, str) and isinstance(token, str)):
        raise ServiceError("the daemon's answer to the container request is not understood",
                           fix="restart the daemon with this version of ssocred")
    return Access(url, token)


def revoke(served: Target) -> int:
    """End the grant of ``served`` at once (its token gets 403 from then on): how many ended, 0 or 1.

    Example: ``revoke(SsoTarget("corp", "111122223333", "Dev")) == 1``
    """
    from ssocred.model.chain import target_key

    count = _ask(OP_REVOKE, *target_key(served)).get("revoked")
    return count if isinstance(count, int) else 0


def revoke_session(session: str) -> None:
    """End every grant of ``session`` when a daemon runs (a logout); never fails: ``revoke_session("corp")``.

    Without a daemon there is nothing to end: grants live in the daemon's memory only.
    """
    try:
        _ask(OP_REVOKE, session, None, None)
    except ServiceError:
        pass  # no daemon, no grants; a daemon that cannot answer also drops them when it sees the logout


def _ask(op: str, session: str, account: str | None, role: str | None, *,
         extra: dict[str, object] | None = None, start: bool = False) -> dict[str, object]:
    """Send one container request to the daemon (``start``: autostart one if none answers): its answer, or error."""
    from ssocred import socket_protocol

    request = {"v": socket_protocol.PROTOCOL_VERSION, "op": op, "session": session, "account": account,
               "role": role, "service": socket_protocol.keyring_service(),
               "backend": os.environ.get("PYTHON_KEYRING_BACKEND", ""), **(extra or {})}
    line = (json.dumps(request) + "\n").encode("utf-8", "surrogateescape")
    reply = socket_protocol.exchange(line)
    if reply is None and start:
        from ssocred.usecases import autostart

        # A grant lives as long as its daemon: wait for the one being started rather than fail.
        if autostart.start(wait=autostart.START_LIMIT):
            reply = socket_protocol.exchange(line)
    if reply is None:
        raise ServiceError("no ssocred daemon answered, and the container endpoint is served by the daemon",
                           fix="start it: ssocred service install (or run: ssocred daemon); it must use "
                           "the same SSOCRED_KEYRING_SERVICE and PYTHON_KEYRING_BACKEND as this command")
    answer = socket_protocol.json_answer(
        *reply, ServiceError("the daemon's answer to the container request is not understood",
                             fix="restart the daemon with this version of ssocred"),
        "the daemon refused the container request")
    return answer
