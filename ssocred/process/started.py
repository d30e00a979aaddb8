"""``ssocred process`` when no daemon answered: start one in the background (autostart), then ask it.

Only this no-daemon path loads it, so the daemon-answered call stays as light as before.
Example: ``run(["--profile", "dev"])`` is the exit code once a started daemon answered, else None
(the caller then answers without a daemon, ``ssocred.process.local``).
"""

from __future__ import annotations

import os

from ssocred.process import client


def run(argv: list[str]) -> int | None:
    """Start a daemon if allowed and ask it ``argv``; None when none answered (``SSOCRED_AUTOSTART=0``, say)."""
    if os.name != "posix":
        return None  # no Unix sockets and file locks to start one with
    from ssocred.adapters.autostart import setting

    if setting() is False or not client.plain_arguments(argv):
        return None  # nothing more to import when it is switched off, as in the test suite
    from ssocred.usecases.autostart import start

    return client.run(argv) if start() else None
