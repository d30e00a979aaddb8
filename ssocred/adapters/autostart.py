"""Starting the daemon in the background for this user: the start lock, the spawn, the wait for its socket.

One caller starts it: the one that takes ``runtime_dir()/autostart.lock`` without waiting. The daemon
it starts inherits that lock and lets go of it once its socket answers, so a held lock means "a daemon
is starting" and callers that find it held wait for the socket instead of all reading the keyring at
once. The file records the last start, ``spawned <time> <pid>`` until that daemon is ready, then
``ready <time> <pid>``. The daemon's pid lock stays the last defence against two daemons.
Example: ``fd = try_lock(); spawn(fd); os.close(fd)``, then ``wait_listening(path, deadline)``.
"""

from __future__ import annotations

import _socket
import fcntl
import os
import time

from ssocred import socket_protocol

LOCK_FILE = "autostart.lock"
#: ``SSOCRED_AUTOSTART=0`` never starts one, ``=1`` starts one even where it is off by default.
VARIABLE = "SSOCRED_AUTOSTART"
#: How long an autostarted daemon runs without requests (a duration, ``schedule.duration``).
IDLE_VARIABLE = "SSOCRED_AUTOSTART_IDLE"
#: Tells the started daemon which descriptor holds the start lock.
FD_VARIABLE = "SSOCRED_AUTOSTART_FD"
#: Per-call or per-caller settings a daemon shared by every later caller must not inherit.
NOT_INHERITED = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES",
                 "INVOCATION_ID", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID",
                 "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_CREDENTIAL_EXPIRATION",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN", FD_VARIABLE)
_POLL = 0.05
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def setting() -> bool | None:
    """``$SSOCRED_AUTOSTART`` as a yes/no, None when unset or unclear: ``setting() is False`` with ``=0``."""
    value = os.environ.get(VARIABLE, "").strip().lower()
    return True if value in _TRUE else False if value in _FALSE else None


def off_by_default() -> str | None:
    """Why a background process is unwelcome here (None: it is welcome): ``"CI is set"``.

    CI runners (``$CI``), sessions without a private runtime dir (``$XDG_RUNTIME_DIR`` or
    ``/run/user/<uid>``: cron, ``su``, many containers) unless ``$SSOCRED_RUNTIME_DIR`` names one, and
    containers without a keyring (no D-Bus session bus and no ``$PYTHON_KEYRING_BACKEND``).
    """
    if os.environ.get("CI", "").strip().lower() not in ("", *_FALSE):
        return "CI is set"
    if not os.environ.get("SSOCRED_RUNTIME_DIR") and not any(
            strict and socket_protocol.usable_base(base, strict) for base, _, strict in socket_protocol.candidates()):
        return "no private runtime dir (XDG_RUNTIME_DIR or /run/user/<uid>)"
    in_container = any(os.path.exists(p) for p in ("/.dockerenv", "/run/.containerenv")) or bool(
        os.environ.get("container"))  # noqa: SIM112 - podman and systemd-nspawn set it in lower case
    if in_container and not (os.environ.get("DBUS_SESSION_BUS_ADDRESS") or os.environ.get("PYTHON_KEYRING_BACKEND")):
        return "a container without a keyring"
    return None


def listening(path: str) -> bool:
    """Whether something accepts connections on the socket ``path``: ``listening(socket_path())``."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(0.2)
        sock.connect(path)
    except OSError:
        return False
    finally:
        sock.close()
    return True


def _lock_path() -> str:
    # Where a start in progress holds it; creating the directory is left to the one who starts.
    return os.path.join(socket_protocol.runtime_dir(), LOCK_FILE)


def try_lock() -> int | None:
    """The start lock's descriptor when this caller got it, None while a daemon is being started."""
    try:
        fd = os.open(_lock_path(), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:  # no runtime dir yet, so no start in progress: make it, as a daemon would
        from ssocred.adapters.paths import runtime_dir

        fd = os.open(runtime_dir() / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def starting() -> bool:
    """Whether a daemon is being started right now (its start lock is held): ``starting()``."""
    fd = try_lock()
    if fd is None:
        return True
    os.close(fd)
    return False


def last_start(fd: int) -> tuple[str, float, int] | None:
    """The recorded last start, ``("spawned" | "ready", unix time, pid)``, from the locked file."""
    try:
        state, at, pid = os.pread(fd, 200, 0).decode().split()
        return state, float(at), int(pid)
    except (OSError, ValueError):
        return None


def _record(fd: int, state: str, pid: int) -> None:
    data = f"{state} {time.time():.3f} {pid}\n".encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


def spawn(fd: int) -> int:
    """Start ``ssocred daemon --autostarted --log-dir`` detached, handing it the start lock ``fd``; its pid.

    Its own session (no terminal, no signal from the caller's group), ``/dev/null`` for its standard
    streams and no other descriptor: nothing the caller's readers wait on stays open.
    """
    import subprocess

    from ssocred.adapters.paths import ssocred_command

    env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
    env[FD_VARIABLE] = str(fd)
    argv = [*ssocred_command(), "daemon", "--autostarted", "--log-dir"]
    proc = subprocess.Popen(argv, env=env, cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True, pass_fds=(fd,))
    proc.returncode = 0  # never waited for: it outlives this caller on purpose
    _record(fd, "spawned", proc.pid)
    return proc.pid


def ready(fd: int) -> None:
    """In the started daemon, once its socket answers: record it and let go of the start lock."""
    try:
        _record(fd, "ready", os.getpid())
    except OSError:
        pass  # the next start only misses the note that this one succeeded
    os.close(fd)


def inherited_lock() -> int | None:
    """The start lock a starting caller handed this daemon (and forget the variable): ``inherited_lock()``."""
    value = os.environ.pop(FD_VARIABLE, "")
    if not value.isdigit():
        return None
    fd = int(value)
    try:
        os.set_inheritable(fd, False)
    except OSError:
        return None
    return fd


def wait_listening(path: str, deadline: float) -> bool:
    """Wait until the socket ``path`` answers, a start in progress ends, or ``deadline`` (monotonic) passes.

    The waiters sleep on the start lock, which the daemon lets go of once it answers: a burst of them
    polling would take the CPU the starting daemon needs.
    Example: ``wait_listening(socket_path(), time.monotonic() + 2)`` is True once the daemon listens.
    """
    if listening(path):
        return True
    try:
        fd = os.open(_lock_path(), os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        _sleep_on(fd, deadline)
    finally:
        os.close(fd)
    return listening(path)


def _sleep_on(fd: int, deadline: float) -> None:
    """Return once the start lock is free or at ``deadline``."""
    import _signal  # type: ignore[import-not-found,unused-ignore]  # ``signal`` would load enum: 3 ms a caller

    left = deadline - time.monotonic()
    if left <= 0:
        return

    def expired(*_: object) -> None:
        raise TimeoutError

    try:
        previous = _signal.signal(_signal.SIGALRM, expired)
    except ValueError:  # not the main thread: no timer signal here, so poll
        while time.monotonic() < deadline and starting():
            time.sleep(_POLL)
        return
    try:
        _signal.setitimer(_signal.ITIMER_REAL, left)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)  # closing ``fd`` lets go of it
        finally:
            _signal.setitimer(_signal.ITIMER_REAL, 0)
    except TimeoutError:
        pass  # also one delivered just as the lock came: the caller looks at the socket either way
    finally:
        _signal.signal(_signal.SIGALRM, previous)


def stop(pid: int, deadline: float) -> bool:
    """SIGTERM the daemon ``pid`` and wait (until ``deadline``, monotonic) for it to exit: whether it did.

    It stores a refresh in flight before it exits. Example: ``stop(status["pid"], time.monotonic() + 30)``
    """
    import signal

    from ssocred.adapters.notify import alive

    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(_POLL)
    return not alive(pid)
