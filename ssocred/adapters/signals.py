"""Hold Ctrl-C and polite kills while a change of stored state that spans a network call is in flight.

A token refresh spends the session's rotating refresh token the moment the service receives the
request; its successor exists only in the answer until it is stored. SIGINT (Ctrl-C), SIGTERM (what
Terraform, IDEs and CI runners send their children) and SIGHUP (a closed terminal) arriving in
between would lose the session, so they are held and delivered, with their usual effect, as soon as
the new token is stored. SIGKILL cannot be held: with a daemon running, clients never refresh.

Example: ``with held(): store_the_answer(send_the_request())``
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

#: The signals held, where the platform has them.
HELD: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Defer SIGINT, SIGTERM and SIGHUP until the block ends, then deliver each one that came.

    Example: ``with held(): grant = oidc.refresh(...); store.write_session(name, token)``; a Ctrl-C
    pressed meanwhile raises KeyboardInterrupt right after the block, a SIGTERM ends the process then.
    """
    if threading.current_thread() is not threading.main_thread():
        # Python runs its handlers in the main thread; here only the kernel's choice of this
        # thread for a default action (termination) needs to be kept out.
        if hasattr(signal, "pthread_sigmask"):
            old = signal.pthread_sigmask(signal.SIG_BLOCK, HELD)
            try:
                yield
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, old)
        else:
            yield
        return
    caught: list[int] = []

    def defer(signum: int, frame: FrameType | None) -> None:
        if signum not in caught:
            caught.append(signum)

    previous: dict[signal.Signals, Callable[[int, FrameType | None], Any] | int] = {}
    try:
        for sig in HELD:
            before = signal.getsignal(sig)
            if before is None:
                continue  # installed outside Python: it cannot be restored, so it is left alone
            signal.signal(sig, defer)
            previous[sig] = before
        yield
    finally:
        for sig, before in previous.items():
            signal.signal(sig, before)
        for signum in caught:
            # The restored disposition acts now: KeyboardInterrupt, termination, or nothing if ignored.
            signal.raise_signal(signum)
