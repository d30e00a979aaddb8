"""Where the daemon socket and the locks live, computed with ``os`` alone.

``ssocred process`` looks for the daemon's socket before importing anything else, so this
module must stay free of imports beyond ``os`` and ``sys`` (``stat`` is loaded by ``os`` itself).
Nothing here creates a file or follows a link into a place another user chose:
``ssocred.paths.runtime_dir`` makes the directory chosen here, by the same rules.
Example: ``socket_path()`` is ``$XDG_RUNTIME_DIR/ssocred/daemon.sock`` on a systemd machine.
"""

import os
import stat
import sys

APP = "ssocred"
#: The keyring service ssocred's items live under unless ``$SSOCRED_KEYRING_SERVICE`` names another.
DEFAULT_SERVICE = APP
SOCKET_NAME = "daemon.sock"
#: The longest path a Unix socket can have: ``sun_path`` holds 108 bytes on Linux, 104 on macOS
#: and the BSDs, the terminating NUL included.
MAX_SOCKET_PATH = 107 if sys.platform.startswith("linux") else 103

#: What ``entry_state`` finds at a path.
MISSING = "missing"
OURS = "ours"
PLANTED = "planted"

#: ``(base, names under it, whether the base must already exist and be private)``.
Candidate = tuple[str, tuple[str, ...], bool]


def keyring_service() -> str:
    """``$SSOCRED_KEYRING_SERVICE``, else ``"ssocred"``: the client and the daemon must agree on it."""
    return os.environ.get("SSOCRED_KEYRING_SERVICE") or DEFAULT_SERVICE


def runtime_dir() -> str:
    """The directory a daemon would use, given what exists now; creates nothing.

    ``$SSOCRED_RUNTIME_DIR`` as given, else the first of ``candidates()`` whose base is usable
    and whose entry is missing or a directory of this user's (an entry someone else planted is
    passed over). Example: ``/run/user/1000/ssocred``, or ``~/.cache/ssocred/run`` under cron.
    """
    override = os.environ.get("SSOCRED_RUNTIME_DIR")
    if override:
        return override
    last = ""
    for base, names, strict in candidates():
        last = os.path.join(base, *names)
        if usable_base(base, strict) and entry_state(base, names) != PLANTED:
            return last
    return last  # nothing usable: paths.runtime_dir says so, and trusted() refuses it


def candidates() -> list[Candidate]:
    """The default runtime dir's places, best first, as ``(base, names, base must be private)``.

    Example: ``[("/run/user/1000", ("ssocred",), True), ("/home/me/.cache", ("ssocred", "run"), False)]``
    """
    found: list[Candidate] = []
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    if os.path.isabs(xdg):
        found.append((os.path.normpath(xdg), (APP,), True))
    home = os.path.expanduser("~")
    home_known = os.path.isabs(home)
    if sys.platform == "darwin" and home_known:
        found.append((os.path.join(home, "Library", "Caches", "TemporaryItems"), (APP,), False))
    found.append((f"/run/user/{os.getuid()}", (APP,), True))
    cache = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(cache):
        cache = os.path.join(home, ".cache") if home_known else ""
    if cache:
        found.append((os.path.normpath(cache), (APP, "run"), False))
    return found


def usable_base(base: str, strict: bool) -> bool:
    """Whether ssocred may keep its directory in ``base``.

    ``strict`` (``$XDG_RUNTIME_DIR``, ``/run/user/<uid>``): a real directory of this user that
    nobody else can enter. Otherwise (a cache dir in the user's home): this user's directory,
    possibly through a link of their own, that no stranger can write; or missing, where
    ``creatable`` allows making it. Example: ``usable_base("/run/user/1000", True)``
    """
    try:
        st = os.lstat(base)
    except FileNotFoundError:
        return not strict and creatable(base)
    except OSError:
        return False
    if strict:
        return _private(st)
    if stat.S_ISLNK(st.st_mode):
        # The user's own link (~/.cache on another disk, say): only they could have made it there.
        if st.st_uid != os.getuid():
            return False
        try:
            st = os.stat(base)
        except OSError:
            return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o002


def entry_state(base: str, names: tuple[str, ...]) -> str:
    """``MISSING``, ``OURS`` (every level a real directory of this user) or ``PLANTED`` (anything else).

    Example: ``entry_state("/run/user/1000", ("ssocred",)) == OURS``
    """
    path = base
    for name in names:
        path = os.path.join(path, name)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return MISSING
        except OSError:
            return PLANTED
        if not (stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid()):
            return PLANTED
    return OURS


def creatable(path: str) -> bool:
    """Whether ssocred may create the missing part of ``path``: its nearest existing ancestor is
    this user's or root's, and strangers cannot swap entries in it (not world-writable unless sticky).

    Example: ``creatable("/tmp/new/dir")`` is True (``/tmp`` is sticky).
    """
    existing = nearest_existing(path)
    try:
        st = os.lstat(existing)
        if stat.S_ISLNK(st.st_mode):
            if st.st_uid not in (0, os.getuid()):
                return False
            st = os.stat(existing)
    except OSError:
        return False
    world_writable = st.st_mode & 0o002 and not st.st_mode & stat.S_ISVTX
    return stat.S_ISDIR(st.st_mode) and st.st_uid in (0, os.getuid()) and not world_writable


def nearest_existing(path: str) -> str:
    """The longest existing prefix of ``path``, made absolute (a link counts as existing).

    Example: ``nearest_existing("/tmp/a/b") == "/tmp"`` when ``/tmp/a`` does not exist.
    """
    existing = os.path.abspath(path)
    while not os.path.lexists(existing):
        parent = os.path.dirname(existing)
        if parent == existing:
            break
        existing = parent
    return existing


def trusted(path: str) -> bool:
    """Whether ``path`` is a real directory of this user that nobody else can enter or write.

    The client checks this before trusting a socket in it: a socket in a directory another user
    could write, or reached through a link, could be anyone's. Example: ``trusted(runtime_dir())``
    """
    try:
        return _private(os.lstat(path))
    except OSError:
        return False


def private(path: str) -> bool:
    """The same as ``trusted(path)``: ``private(runtime_dir())``."""
    return trusted(path)


def socket_path() -> str:
    """The daemon's Unix socket: ``runtime_dir()/daemon.sock``."""
    return os.path.join(runtime_dir(), SOCKET_NAME)


def trusted_socket() -> str | None:
    """The daemon's socket when its directory is ``trusted``, else None (ask no daemon).

    Example: ``path = trusted_socket()`` then ``sock.connect(path)`` when it is not None.
    """
    directory = runtime_dir()
    return os.path.join(directory, SOCKET_NAME) if trusted(directory) else None


def bindable(path: str) -> str:
    """``path`` itself when a Unix socket fits there; ``ServiceError`` naming the fix when it is too long.

    Example: ``bindable("/run/user/1000/ssocred/daemon.sock")``
    """
    size = len(os.fsencode(path))
    if size <= MAX_SOCKET_PATH:
        return path
    from ssocred.errors import ServiceError

    raise ServiceError(f"cannot listen on {path}: {size} bytes, more than a Unix socket path may have "
                       f"({MAX_SOCKET_PATH})", fix="set SSOCRED_RUNTIME_DIR to a short, writable path")


def _private(st: os.stat_result) -> bool:
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077
