"""Every file and directory ssocred touches, in one place that tests can redirect.

Example: ``SSOCRED_STATE_DIR=/tmp/s ssocred status`` keeps the index in ``/tmp/s``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

APP = "ssocred"


def aws_config_file() -> Path:
    """The AWS config file: ``$AWS_CONFIG_FILE`` or ``~/.aws/config``."""
    return Path(os.path.expandvars(os.path.expanduser(os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config")))


def aws_sso_cache_dir() -> Path:
    """The AWS CLI token cache, ``~/.aws/sso/cache`` (no variable relocates it)."""
    return Path(os.path.expanduser("~/.aws/sso/cache"))


def state_dir() -> Path:
    """Non-secret state (the store index): ``$SSOCRED_STATE_DIR`` or the platform state dir."""
    override = os.environ.get("SSOCRED_STATE_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_state_dir(APP))


def runtime_dir() -> Path:
    """Locks and the daemon socket: see ``rundir.runtime_dir`` (shared with the fast client)."""
    from ssocred import rundir

    return Path(rundir.runtime_dir())


def lock_dir() -> Path:
    """``runtime_dir()/locks``, both made private (the fast client trusts only a private runtime dir)."""
    return private_dir(private_dir(runtime_dir()) / "locks")


def log_dir() -> Path:
    """Daemon logs: ``$SSOCRED_LOG_DIR`` or the platform log dir."""
    override = os.environ.get("SSOCRED_LOG_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_log_dir(APP))


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if needed and make it 0700; returns it.

    Refuses a directory that another user owns (a pre-created ``/tmp`` path, say).
    """
    missing = []
    ancestor = path
    while not ancestor.exists() and ancestor != ancestor.parent:
        missing.append(ancestor)
        ancestor = ancestor.parent
    # Parents made here are private too: mkdir(parents=True) would leave them 0755 (umask).
    for directory in reversed(missing):
        directory.mkdir(exist_ok=True, mode=0o700)
        if directory != path and directory.stat().st_uid == os.getuid():
            os.chmod(directory, 0o700)
    if path.stat().st_uid != os.getuid():
        from ssocred.errors import ConfigError

        raise ConfigError(f"{path} belongs to another user", fix="remove it or set SSOCRED_RUNTIME_DIR")
    os.chmod(path, 0o700)
    return path


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` via a temp file, fsync and rename, so readers see old or new.

    Example: ``atomic_write(Path("~/x.json").expanduser(), b"{}")``
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def ssocred_command() -> list[str]:
    """The absolute command that starts ssocred, e.g. ``["/home/me/.venv/bin/ssocred"]``.

    The console script beside the interpreter wins (a venv need not be on the service's PATH),
    then ``ssocred`` on PATH, then ``<python> -m ssocred``.
    """
    import shutil
    import sys

    beside = Path(sys.executable).parent / "ssocred"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [os.path.abspath(beside)]
    found = shutil.which("ssocred")
    if found:
        return [os.path.abspath(found)]
    return [os.path.abspath(sys.executable), "-m", "ssocred"]
