"""Which store keeps this user's secrets, for ``status``: the OS keyring, or a memory-store daemon's memory.

A memory store ends with its daemon: ``status`` says so while it runs, and once it has stopped names
the sessions it held, which need that daemon started again and a login.
Example: ``store_report("ssocred", read_status())["kind"] == "memory"`` beside ``ssocred daemon --store memory``.
"""

from __future__ import annotations

from typing import Any

from ssocred.socket_protocol import STORE_KEYRING, STORE_MEMORY


def store_report(service: str, daemon: dict[str, Any] | None) -> dict[str, Any]:
    """``{"kind", "pid", "lost_sessions"}`` (no secrets): where the items are, and what a stopped memory store held.

    ``daemon`` is the running daemon's status (``read_status()``), which names its pid and store.
    Example: ``{"kind": "memory", "pid": 4242, "lost_sessions": []}`` while a memory-store daemon runs.
    """
    from ssocred.adapters.keyring_backend import store_kind
    from ssocred.adapters.memory_keyring import stranded

    if store_kind(service) == STORE_MEMORY:
        pid = daemon.get("pid") if daemon and daemon.get("store") == STORE_MEMORY else None
        return {"kind": STORE_MEMORY, "pid": pid, "lost_sessions": []}
    return {"kind": STORE_KEYRING, "pid": None, "lost_sessions": stranded(service)}
