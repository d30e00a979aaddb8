"""Every file and directory ssocred touches, in one place that tests can redirect.

Example: ``SSOCRED_STATE_DIR=/tmp/s ssocred status`` keeps the index in ``/tmp/s``.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

APP = "ssocred"
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_RUNTIME_FIX = "set SSOCRED_RUNTIME_DIR to a private, writable directory"
#: Default runtime dirs already warned about in this process.
_warned: set[str] = set()


def aws_config_file() -> Path:
    """The AWS config file: ``$AWS_CONFIG_FILE`` or ``~/.aws/config``."""
    return Path(os.path.expandvars(os.path.expanduser(os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config")))


def aws_credentials_file() -> Path:
    """The shared credentials file: ``$AWS_SHARED_CREDENTIALS_FILE`` or ``~/.aws/credentials``."""
    value = os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials"
    return Path(os.path.expandvars(os.path.expanduser(value)))


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
    """Locks and the daemon socket, made if missing: ``socket_protocol.runtime_dir()``'s choice.

    Example: ``/run/user/1000/ssocred``.

    ``$SSOCRED_RUNTIME_DIR`` must be a directory of this user (made 0700 when missing). A default
    place that someone else got to first (a link, a file, a directory of theirs) is passed over
    with one warning, never followed, chmodded or written into.
    """
    from ssocred import socket_protocol

    override = os.environ.get("SSOCRED_RUNTIME_DIR")
    if override:
        return private_dir(Path(override),
                           fix="set SSOCRED_RUNTIME_DIR to a directory of yours (not a link), or unset it")
    tried = []
    for base, names, strict in socket_protocol.candidates():
        tried.append(os.path.join(base, *names))
        if socket_protocol.usable_base(base, strict):
            made = _default_entry(base, names, strict)
            if made is not None:
                return made
    from ssocred.errors import ConfigError

    raise ConfigError(f"no private directory for the daemon socket and locks (tried {', '.join(tried)})",
                      fix="set SSOCRED_RUNTIME_DIR to a directory that only you can enter")


def service_file(prefix: str, service: str) -> Path:
    """A state-dir file of one keyring service, named readably, bounded and unique by digest.

    Example: ``service_file("index", "ssocred") == state_dir() / "index.json"``, and
    ``service_file("index", "ssocred-test")`` is ``state_dir() / "index-ssocred-test-<8 hex>.json"``.
    """
    import hashlib  # deferred: loading OpenSSL costs the start-up of every caller
    import re

    from ssocred.socket_protocol import DEFAULT_SERVICE

    if service == DEFAULT_SERVICE:
        return state_dir() / f"{prefix}.json"
    readable = (re.sub(r"[^A-Za-z0-9._-]+", "_", service).strip(".") or "_")[:40]
    return state_dir() / f"{prefix}-{readable}-{hashlib.sha256(service.encode()).hexdigest()[:8]}.json"


def lock_dir() -> Path:
    """``runtime_dir()/locks``, private like it: ``lock_dir() / "session-corp.lock"``."""
    return private_dir(runtime_dir() / "locks")


def log_dir() -> Path:
    """Daemon logs: ``$SSOCRED_LOG_DIR`` or the platform log dir."""
    override = os.environ.get("SSOCRED_LOG_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_log_dir(APP))


def private_dir(path: Path, fix: str | None = None) -> Path:
    """Make ``path`` a 0700 directory of this user, creating it and its missing parents (0700); returns it.

    Existing parents are left as they are. A link, a file, or another user's directory at
    ``path`` is refused with a ConfigError ending in ``fix``. Example: ``private_dir(state_dir())``
    """
    _make_missing(str(path))
    try:
        fd = os.open(path, _OPEN_DIR | os.O_NOFOLLOW)
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise _cannot_create(str(path), exc, fix or "check its permissions") from None
        raise _refusal(str(path), fix) from None
    try:
        st = os.fstat(fd)
        if st.st_uid != os.getuid():
            raise _refusal(str(path), fix)
        if stat.S_IMODE(st.st_mode) != 0o700:
            os.fchmod(fd, 0o700)
    finally:
        os.close(fd)
    return path


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` via a temp file, fsync and rename, so readers see old or new.

    Missing parents are made 0700; existing ones are left as they are.
    Example: ``atomic_write(Path("~/x.json").expanduser(), b"{}")``
    """
    _make_missing(str(path.parent))
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


def _default_entry(base: str, names: tuple[str, ...], strict: bool) -> Path | None:
    """``base/names...`` made or checked level by level through directory fds; None when a level is planted."""
    if not strict:
        _make_missing(base)
    try:
        # A strict base must itself be a real directory; a home base may be the user's own link.
        parent = os.open(base, _OPEN_DIR | (os.O_NOFOLLOW if strict else 0))
    except OSError:
        return None
    path = base
    try:
        st = os.fstat(parent)
        if st.st_uid != os.getuid() or st.st_mode & (0o077 if strict else 0o002):
            return None  # changed since rundir looked at it
        for name in names:
            path = os.path.join(path, name)
            child = _own_entry(parent, name, path)
            if child is None:
                _warn_planted(path)
                return None
            os.close(parent)
            parent = child
    finally:
        os.close(parent)
    return Path(path)


def _own_entry(parent: int, name: str, path: str) -> int | None:
    """An fd of ``name`` in ``parent`` once it is a 0700 directory of ours (made if missing); None if planted."""
    try:
        os.mkdir(name, 0o700, dir_fd=parent)
    except FileExistsError:
        pass
    except OSError as exc:
        raise _cannot_create(path, exc, _RUNTIME_FIX) from None
    try:
        fd = os.open(name, _OPEN_DIR | os.O_NOFOLLOW, dir_fd=parent)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            return None
        raise _cannot_create(path, exc, _RUNTIME_FIX) from None
    st = os.fstat(fd)
    if st.st_uid != os.getuid():
        os.close(fd)
        return None
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.fchmod(fd, 0o700)
    return fd


def _make_missing(directory: str) -> None:
    """Create the missing part of ``directory``, each new level 0700 and checked through its fd.

    Nothing existing is changed; nothing is made under a stranger's directory.
    """
    from ssocred import socket_protocol

    if os.path.lexists(directory):
        return
    existing = socket_protocol.nearest_existing(directory)
    if not socket_protocol.creatable(existing):
        from ssocred.errors import ConfigError

        raise ConfigError(f"cannot create {directory}: {existing} is not a directory of yours or root's "
                          "that only they can change", fix="choose a directory of yours")
    missing = os.path.relpath(os.path.abspath(directory), existing).split(os.sep)
    fd = os.open(existing, _OPEN_DIR)
    path = existing
    try:
        for name in missing:
            path = os.path.join(path, name)
            made = True
            try:
                os.mkdir(name, 0o700, dir_fd=fd)
            except FileExistsError:
                made = False  # another process of ours, or a stranger: checked below
            except OSError as exc:
                raise _cannot_create(path, exc) from None
            try:
                child = os.open(name, _OPEN_DIR | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                raise _refusal(path, None) from None
            os.close(fd)
            fd = child
            st = os.fstat(fd)
            if st.st_uid != os.getuid():
                raise _refusal(path, None)
            if made and stat.S_IMODE(st.st_mode) != 0o700:
                os.fchmod(fd, 0o700)  # an unusual umask must not leave it unusable or open
    finally:
        os.close(fd)


def _describe(path: str) -> str:
    """What is at ``path``, for a message: ``"a symbolic link owned by uid 65534"``."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    kind = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "a directory" if stat.S_ISDIR(st.st_mode) else "a file"
    return f"{kind} owned by uid {st.st_uid}"


def _refusal(path: str, fix: str | None) -> Exception:
    from ssocred.errors import ConfigError

    return ConfigError(f"{path} is {_describe(path)}, not a directory of uid {os.getuid()}",
                       fix=fix or "remove it, or choose another directory")


def _cannot_create(path: str, exc: OSError, fix: str = "choose a writable directory of yours") -> Exception:
    from ssocred.errors import ConfigError

    return ConfigError(f"cannot use {path} ({exc.strerror or exc})", fix=fix)


def _warn_planted(path: str) -> None:
    if path in _warned:
        return
    _warned.add(path)
    import logging

    logging.getLogger("ssocred.adapters.paths").warning(
        "not using %s: it is %s, not a directory ssocred made; using the next place", path, _describe(path))


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


def display_path(path: Path | str) -> str:
    """``path`` with the home directory shown as ``~``: ``display_path("/root/.aws/config")``."""
    text = str(path)
    home = os.path.expanduser("~")
    if home not in ("", "~", os.sep) and (text == home or text.startswith(home.rstrip(os.sep) + os.sep)):
        return "~" + text[len(home.rstrip(os.sep)) :]
    return text
