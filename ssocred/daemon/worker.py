"""``python -m ssocred.daemon.worker``: the daemon's network worker (``ssocred.adapters.network_client``).

It reads pickled ``(id, op, args)`` requests from stdin, runs each on a thread of its own with the
real adapters, and writes ``(id, ok, value)`` answers to stdout. It ignores SIGINT, SIGTERM and SIGHUP:
a Ctrl-C or a service stop reaches the daemon too, which finishes a refresh in flight (its answer
must come back) before it stops. It exits when stdin ends (the daemon closed it, or died), once the
calls in flight are answered. Example: ``python -m ssocred.daemon.worker --protect``.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO

from ssocred.adapters.network_client import ASSUME_ROLE, HEADER, OIDC, PORTAL
from ssocred.errors import ServiceError

#: Calls run at once at most: more than the daemon's own threads ever make.
MAX_CALLS = 64


def _oidc(region: str, op: str, expect: dict[str, Any], kwargs: dict[str, Any]) -> Any:
    from ssocred.adapters.oidc import Oidc

    return Oidc(region).request(op, expect, kwargs)


def _portal(region: str, pool: int, op: str, what: str, expect: dict[str, Any] | None, kwargs: dict[str, Any]) -> Any:
    from ssocred.adapters.portal import Portal

    return Portal(region, pool=pool).request(op, what, expect, kwargs)


def _assume_role(source: Any, link: Any, endpoint_url: str | None, config_file: str | None) -> Any:
    from ssocred.adapters import sts

    return sts.assume_role(source, link, endpoint_url=endpoint_url, config_file=config_file)


#: What each op runs: the adapter's own request, made here instead of in the daemon.
OPS: dict[str, Callable[..., Any]] = {OIDC: _oidc, PORTAL: _portal, ASSUME_ROLE: _assume_role}


def main(argv: list[str]) -> int:
    """Answer requests until stdin ends; returns 0. ``--protect``: guard this memory as a memory store does."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    # Started during a refresh, it inherits the daemon's held signals: its own choice above is what counts.
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    if "--protect" in argv:
        from ssocred.adapters import memory_guard

        memory_guard.protect()
    # The answers get a descriptor of their own; fd 1 becomes stderr, so a stray print cannot break a frame.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    write_lock = threading.Lock()
    with ThreadPoolExecutor(MAX_CALLS, thread_name_prefix="ssocred-call") as pool:
        for ident, op, args in _requests(sys.stdin.buffer):
            pool.submit(_answer, out, write_lock, ident, op, args)
    return 0


def _requests(stream: BinaryIO) -> Iterator[tuple[int, str, tuple[Any, ...]]]:
    """Each ``(id, op, args)`` request until stdin ends."""
    while True:
        head = stream.read(HEADER.size)
        if len(head) < HEADER.size:
            return
        yield pickle.loads(stream.read(HEADER.unpack(head)[0]))  # noqa: S301 - our parent, over its own pipe


def _answer(out: BinaryIO, lock: threading.Lock, ident: int, op: str, args: tuple[Any, ...]) -> None:
    try:
        value, ok = OPS[op](*args), True
    except Exception as exc:  # every failure goes back to the caller, which raises it
        value, ok = exc, False
    try:
        frame = pickle.dumps((ident, ok, value), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # an exception that cannot be pickled still fails its call
        frame = pickle.dumps((ident, False, ServiceError(f"the request failed ({type(value).__name__})")))
    try:
        with lock:
            out.write(HEADER.pack(len(frame)) + frame)
            out.flush()
    except (OSError, ValueError):  # the daemon is gone: nobody waits for this answer
        pass


if __name__ == "__main__":
    os._exit(main(sys.argv[1:]))  # threads of botocore's pools would hold up the interpreter's exit
