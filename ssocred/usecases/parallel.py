"""Run one call per item on a few threads, with a progress bar; the first failure stops the rest.

Example: ``each(lambda a: portal.roles(token, a), ["111122223333"], "Listing roles", workers=16)``
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


class ItemFailed(Exception):
    """``work(item)`` raised ``error``; carries the item so the caller can say which one."""

    def __init__(self, item: object, error: BaseException) -> None:
        super().__init__(type(error).__name__)
        self.item = item
        self.error = error


def each(work: Callable[[T], R], items: Sequence[T], label: str, *, workers: int) -> list[R]:
    """``[work(i) for i in items]`` on up to ``workers`` threads, in input order.

    The first failure is raised as ItemFailed (queued calls are dropped; calls in flight end on
    their own), so a partial result is never mistaken for a whole one.
    """
    from ssocred.adapters.progress import Progress

    if not items:
        return []
    pool = ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix="ssocred")
    try:
        with Progress(label, total=len(items)) as bar:
            def one(item: T) -> R:
                try:
                    result = work(item)
                except Exception as exc:
                    raise ItemFailed(item, exc) from exc
                bar.advance()
                return result

            futures = [pool.submit(one, item) for item in items]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for future in done:
                error = future.exception()
                if error is not None:
                    raise error
            return [future.result() for future in futures]
    finally:
        # On failure or Ctrl-C the queue is dropped instead of waited for.
        pool.shutdown(wait=False, cancel_futures=True)
