"""Where the daemon socket and the locks live, computed with ``os`` alone.

``ssocred process`` looks for the daemon's socket before importing anything else, so this
module must stay free of imports beyond ``os`` and ``sys``.
Example: ``socket_path()`` is ``$XDG_RUNTIME_DIR/ssocred/daemon.sock`` on a systemd machine.
"""

import os
import sys

APP = "ssocred"


def runtime_dir() -> str:
    """``$SSOCRED_RUNTIME_DIR``, else ``$XDG_RUNTIME_DIR/ssocred``, else a per-user platform default."""
    override = os.environ.get("SSOCRED_RUNTIME_DIR")
    if override:
        return override
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return os.path.join(xdg, APP)
    if sys.platform == "darwin":
        return os.path.expanduser("~/Library/Caches/TemporaryItems/" + APP)
    run_user = f"/run/user/{os.getuid()}"
    if os.path.isdir(run_user):
        return os.path.join(run_user, APP)
    return os.path.join(os.environ.get("TMPDIR") or "/tmp", f"{APP}-{os.getuid()}")  # noqa: S108 - 0700, owner-checked


def socket_path() -> str:
    """The daemon's Unix socket: ``runtime_dir()/daemon.sock``."""
    return os.path.join(runtime_dir(), "daemon.sock")
