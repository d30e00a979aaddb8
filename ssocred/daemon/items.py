"""The daemon's answers about its store: which one it keeps (``"op": "store"``) and, for a memory store,
the items themselves (``"op": "item-get" | "item-set" | "item-delete"``, see ``ssocred.socket_protocol``).

A memory-store daemon is the only place its secrets exist, so every client of its user reaches the
items through here (``ssocred.adapters.memory_keyring.DaemonKeyring``), whatever keyring backend the
client could use itself; only the daemon's own keyring service is answered, and only its own user
(the responder checks the peer first). Values are never logged: a request is logged by its op only.

Example: ``register(responder, STORE_MEMORY)`` before the socket answers.
"""

from __future__ import annotations

import json
import logging
import os

from ssocred.adapters.keyring_backend import usable_backend
from ssocred.daemon.responder import Responder, where
from ssocred.errors import SsocredError, StoreError, UsageError
from ssocred.socket_protocol import OP_ITEM_DELETE, OP_ITEM_GET, OP_ITEM_SET, OP_STORE, STORE_MEMORY

log = logging.getLogger("ssocred.daemon.items")


def register(responder: Responder, store: str) -> None:
    """Answer ``"op": "store"`` with ``store``; a memory store also answers its items, to any client backend.

    Example: ``register(responder, "memory"); responder.ops["item-get"]({...})``
    """
    answer = json.dumps({"store": store, "pid": os.getpid()}) + "\n"
    responder.ops[OP_STORE] = lambda req: (0, answer)
    if store != STORE_MEMORY:
        return  # the items are in the OS keyring: each client reads them itself
    responder.any_backend = True
    items = Items(responder.service)
    for op in (OP_ITEM_GET, OP_ITEM_SET, OP_ITEM_DELETE):
        responder.ops[op] = items.serve


class Items:
    """The memory store's items of one keyring service: ``Items("ssocred").serve({"op": "item-get", ...})``."""

    def __init__(self, service: str) -> None:
        self.service = service

    def serve(self, req: dict[str, object]) -> tuple[int, str]:
        """``(0, JSON answer)`` for one item request, or ``(exit code, {"message", "fix"})``."""
        op, service, username, value = req.get("op"), req.get("service"), req.get("username"), req.get("value")
        if service != self.service:
            return _error(UsageError("the memory store answers only for its own keyring service"))
        if not (isinstance(username, str) and username) or (op == OP_ITEM_SET and not isinstance(value, str)):
            return _error(UsageError("malformed item request"))
        try:
            kr = usable_backend(self.service)
            if op == OP_ITEM_GET:
                return _ok({"value": kr.get_password(self.service, username)})
            if op == OP_ITEM_SET:
                kr.set_password(self.service, username, value)
                return _ok({"stored": True})
            try:
                kr.delete_password(self.service, username)
            except Exception as exc:
                if type(exc).__name__ != "PasswordDeleteError":
                    raise
                return _ok({"deleted": False})
            return _ok({"deleted": True})
        except SsocredError as exc:
            return _error(exc)
        except Exception as exc:
            log.error("an item request failed with %s (%s)", type(exc).__name__, where(exc))
            return _error(StoreError("the daemon failed to keep an item", fix="see its log"))


def _ok(answer: dict[str, object]) -> tuple[int, str]:
    return 0, json.dumps(answer) + "\n"


def _error(exc: SsocredError) -> tuple[int, str]:
    return exc.exit_code, json.dumps({"message": exc.message, "fix": exc.fix}) + "\n"
