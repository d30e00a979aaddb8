"""Where the daemon socket and the locks live, computed with ``os`` alone.

``ssocred process`` looks for the daemon's socket before importing anything else, so this
module must stay free of imports beyond ``os`` and ``sys``.
Example: ``socket_path()`` is ``$XDG_RUNTIME_DIR/ssocred/daemon.sock`` on a systemd machine.
"""

import os
import sys

APP = "ssocred"
#: The keyring service ssocred's items live under unless ``$SSOCRED_KEYRING_SERVICE`` names another.
DEFAULT_SERVICE = APP


def keyring_service() -> str:
    """``$SSOCRED_KEYRING_SERVICE``, else ``"ssocred"``: the client and the daemon must agree on it."""
    return os.environ.get("SSOCRED_KEYRING_SERVICE") or DEFAULT_SERVICE


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


def private(path: str) -> bool:
    """Whether ``path`` is a directory of this user that nobody else can enter or write.

    The client checks this before trusting a socket in it: in a shared /tmp another user could
    have made the directory first and put a socket of their own there.
    Example: ``private(runtime_dir())``
    """
    try:
        st = os.stat(path)
    except OSError:
        return False
    return st.st_uid == os.getuid() and not st.st_mode & 0o077


def socket_path() -> str:
    """The daemon's Unix socket: ``runtime_dir()/daemon.sock``."""
    return os.path.join(runtime_dir(), "daemon.sock")
