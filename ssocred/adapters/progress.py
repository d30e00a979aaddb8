"""A one-line progress bar on stderr, drawn only when stderr is a terminal.

Example: ``with Progress("Listing roles", total=500) as bar: bar.advance()``
"""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import TextIO

_WIDTH = 30
_EVERY = 0.1  # seconds between redraws: a terminal cannot show more and writes are not free


class Progress:
    """Thread-safe counter drawn as ``label [#####.....] 12/40``; silent when ``out`` is not a tty."""

    def __init__(self, label: str, total: int, out: TextIO | None = None, *, enabled: bool | None = None) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self._out = out if out is not None else sys.stderr
        self._enabled = _isatty(self._out) if enabled is None else enabled
        self._lock = threading.Lock()
        self._drawn = 0.0

    def __enter__(self) -> Progress:
        self._draw(force=True)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def advance(self, step: int = 1) -> None:
        """Count ``step`` units as done."""
        with self._lock:
            self.done += step
        self._draw()

    def close(self) -> None:
        """Draw the final state and end the line."""
        if self._enabled:
            self._draw(force=True)
            self._out.write("\n")
            self._out.flush()
            self._enabled = False

    def line(self) -> str:
        """The bar as text: ``Listing roles [###...] 3/10``."""
        total = max(self.total, 1)
        filled = min(_WIDTH, _WIDTH * self.done // total)
        return f"{self.label} [{'#' * filled}{'.' * (_WIDTH - filled)}] {self.done}/{self.total}"

    def _draw(self, *, force: bool = False) -> None:
        if not self._enabled:
            return
        now = time.monotonic()
        with self._lock:
            if not force and now - self._drawn < _EVERY and self.done < self.total:
                return
            self._drawn = now
            self._out.write("\r" + self.line())
            self._out.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
