"""The chunk journal: every generation of parts a chunked keyring write may have left behind.

The keyring cannot list items, so before a writer stores the parts of a large value under a
new chunk id it records that generation here; deleting an item and the sweep read this file to
find parts that no head references any more (a writer killed half-way, or an old generation
whose removal was cut short). One file per keyring service name in the state dir, 0600, names
and counts only, never a value. Format::

    {"version": 1,
     "generations": [{"key": "session:corp", "id": "0a1b2c3d", "chunks": 3, "at": 1.7e9}]}

Reads take no lock; changes are read-modify-write under ``.<file>.lock`` and replace the file
atomically. Example: ``Journal(journal_path("ssocred"), 10).read()``
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ssocred.socket_protocol import STORE_KEYRING

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Generation:
    """One generation of parts: ``Generation("session:corp", "0a1b2c3d", 3, 1.7e9)``."""

    key: str
    id: str
    chunks: int
    at: float


def journal_path(service: str, store: str = STORE_KEYRING) -> Path:
    """The journal of a keyring service: ``state_dir()/chunks.json`` for ``"ssocred"`` in the OS keyring.

    A memory-store daemon's items have their own (``chunks-memory.json``): they end with it.
    """
    from ssocred.adapters.paths import service_file

    return service_file("chunks" if store == STORE_KEYRING else f"chunks-{store}", service)


def render(generations: Iterable[Generation]) -> bytes:
    """The file's bytes: ``render([]) == b'{"version":1,"generations":[]}'``."""
    data = {
        "version": FORMAT_VERSION,
        "generations": [{"key": g.key, "id": g.id, "chunks": g.chunks, "at": g.at} for g in generations],
    }
    return json.dumps(data, separators=(",", ":")).encode()


def parse(raw: bytes) -> tuple[Generation, ...]:
    """Inverse of ``render``; ValueError, KeyError or TypeError when malformed."""
    data: dict[str, Any] = json.loads(raw)
    if data.get("version") != FORMAT_VERSION:
        raise ValueError(f"unknown journal version {data.get('version')!r}")
    found = []
    for g in data["generations"]:
        chunks = g["chunks"]
        if not (isinstance(g["key"], str) and isinstance(g["id"], str) and isinstance(chunks, int) and chunks > 0):
            raise ValueError("malformed generation")
        found.append(Generation(g["key"], g["id"], chunks, float(g["at"])))
    return tuple(found)


class Journal:
    """The journal file of one keyring service: ``Journal(path, timeout=10).add(generation)``."""

    def __init__(self, path: Path, timeout: float) -> None:
        self.path = path
        self.timeout = timeout

    def read(self) -> tuple[Generation, ...]:
        """What is recorded, empty when nothing (or nothing readable) is: ``journal.read()``."""
        try:
            return parse(self.path.read_bytes())
        except FileNotFoundError:
            return ()
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            # Unreadable bookkeeping must never stop a credential write; the next change
            # replaces it, and only leftovers recorded before are lost track of.
            return ()

    def of(self, key: str) -> tuple[Generation, ...]:
        """The generations recorded for ``key``: ``journal.of("session:corp")``."""
        return tuple(g for g in self.read() if g.key == key)

    def add(self, *generations: Generation) -> None:
        """Record generations before their parts are written: ``journal.add(Generation(...))``."""
        new = {(g.key, g.id) for g in generations}
        if new:
            self.update(lambda gens: [*(g for g in gens if (g.key, g.id) not in new), *generations])

    def drop(self, key: str, ids: Iterable[str]) -> None:
        """Forget generations whose parts are gone: ``journal.drop("session:corp", {"0a1b2c3d"})``."""
        gone = set(ids)
        if gone:
            self.update(lambda gens: [g for g in gens if not (g.key == key and g.id in gone)])

    def update(self, change: Callable[[tuple[Generation, ...]], list[Generation]]) -> None:
        """Apply ``change`` under the journal's lock and replace the file (0600) atomically."""
        from ssocred.adapters import locks
        from ssocred.adapters.paths import atomic_write, private_dir

        private_dir(self.path.parent)
        lock = locks.Lock(self.path.with_name(f".{self.path.name}.lock"))
        with locks.held(lock, f"the chunk journal {self.path}", timeout=self.timeout):
            before = self.read()
            after = change(before)
            if list(before) != after:
                atomic_write(self.path, render(after))
