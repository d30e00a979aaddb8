"""How the daemon shows itself: systemd's notify socket, desktop notifications, its pid lock and status file.

Notifications are best effort: without ``$NOTIFY_SOCKET``, ``notify-send`` or ``osascript``
nothing happens and nothing fails. The pid lock (``runtime_dir()/daemon.lock``) keeps one
daemon per user; the status file (``state_dir()/daemon.json``, no secrets) tells
``ssocred status`` what it does, and ``read_status`` believes it only while that daemon lives.
Example: ``sd_notify("READY=1")``; ``desktop("ssocred: log in again", "SSO session corp has ended")``
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ssocred.adapters.paths import atomic_write, private_dir, runtime_dir, state_dir
from ssocred.errors import ServiceError

if TYPE_CHECKING:
    from ssocred.adapters.locks import Lock

log = logging.getLogger(__name__)

#: A notification command that takes longer than this is abandoned.
DESKTOP_TIMEOUT = 10.0
STATUS_FILE = "daemon.json"
PID_FILE = "daemon.pid"
LOCK_FILE = "daemon.lock"
#: ``read_status`` probes the pid lock for an instant: a daemon starting just then waits this long.
LOCK_WAIT = 1.0


def sd_notify(state: str) -> bool:
    """Send ``state`` (``READY=1``, ``WATCHDOG=1``, ``STOPPING=1``...) to ``$NOTIFY_SOCKET``.

    An address starting with ``@`` is in the abstract namespace. Returns whether it was sent.
    Example: ``sd_notify("STATUS=refreshing 2 sessions")``
    """
    address = os.environ.get("NOTIFY_SOCKET")
    if not address or address[0] not in "/@":
        return False
    target = "\0" + address[1:] if address[0] == "@" else address
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.settimeout(2.0)
            sock.sendto(state.encode(), target)
    except OSError as exc:
        log.debug("could not notify systemd (%s)", exc.strerror or type(exc).__name__)
        return False
    return True


def watchdog_interval() -> float | None:
    """Seconds between ``WATCHDOG=1`` pings: half of ``$WATCHDOG_USEC``, None when not asked for.

    Example: with ``WATCHDOG_USEC=2000000``, ``watchdog_interval() == 1.0``.
    """
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec.isdigit() or int(usec) <= 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2e6


def _applescript_string(text: str) -> str:
    """An AppleScript string literal, quotes and backslashes escaped: ``_applescript_string("hi") == '"hi"'``."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def desktop_command(title: str, body: str) -> list[str] | None:
    """The notification command for this platform, or None when there is none.

    Example: ``desktop_command("ssocred", "log in again")[0]`` is the ``notify-send`` path on Linux.
    """
    if sys.platform == "darwin":
        osascript = shutil.which("osascript")
        if osascript is None:
            return None
        script = f"display notification {_applescript_string(body)} with title {_applescript_string(title)}"
        return [osascript, "-e", script]
    notify_send = shutil.which("notify-send")
    if notify_send is None:
        return None
    return [notify_send, "--app-name=ssocred", title, body]


def desktop(title: str, body: str) -> bool:
    """Show a desktop notification where possible; returns whether a command ran successfully.

    Example: ``desktop("ssocred: log in again", "run: ssocred login --sso-session corp")``
    """
    argv = desktop_command(title, body)
    if argv is None:
        return False
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=DESKTOP_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.debug("the desktop notification failed (%s)", type(exc).__name__)
        return False
    return done.returncode == 0


# --- the pid lock and the status file --------------------------------------------------------


class AlreadyRunning(ServiceError):
    """Another daemon holds the pid lock: ``AlreadyRunning(1234).line()`` names its pid."""

    def __init__(self, pid: int | None) -> None:
        super().__init__(f"another ssocred daemon is already running (pid {pid or 'unknown'})",
                         fix="stop it first (systemctl --user stop ssocred) or leave it running")


def acquire_pid_lock() -> Lock:
    """Take ``runtime_dir()/daemon.lock`` and record our pid; AlreadyRunning when another daemon has it.

    Example: ``lock = acquire_pid_lock(); ...; release_pid_lock(lock)``
    """
    from ssocred.adapters import locks

    directory = private_dir(runtime_dir())
    lock = locks.Lock(directory / LOCK_FILE, "the daemon's pid file")
    try:
        lock.acquire(timeout=LOCK_WAIT)
    except locks.LockTimeout:
        try:
            pid: int | None = int((directory / PID_FILE).read_text().strip())
        except (OSError, ValueError):
            pid = None
        raise AlreadyRunning(pid) from None
    atomic_write(directory / PID_FILE, f"{os.getpid()}\n".encode())
    return lock


def release_pid_lock(lock: Lock) -> None:
    """Remove the status and pid files, then free the lock: ``release_pid_lock(lock)``."""
    for path in (status_path(), runtime_dir() / PID_FILE):
        path.unlink(missing_ok=True)
    lock.release()


def status_path() -> Path:
    """The daemon's status file: ``state_dir()/daemon.json``."""
    return state_dir() / STATUS_FILE


class StatusWriter:
    """Replaces the status file atomically (0600) when its content changes: ``StatusWriter().write({"pid": 1})``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: bytes | None = None

    def write(self, data: dict[str, Any]) -> None:
        """Write ``data`` unless it is what the file already holds; a failure is logged, not raised."""
        raw = json.dumps(data, indent=1, sort_keys=True).encode()
        with self._lock:
            if raw == self._last:
                return
            try:
                atomic_write(status_path(), raw)
            except OSError as exc:
                log.warning("cannot write %s (%s)", status_path(), exc.strerror)
                return
            self._last = raw


class Reporter:
    """One log line and one desktop notification per distinct problem, however often it is seen.

    Example: ``Reporter().report(("login", "corp", entry), "session corp cannot be refreshed", title, body)``
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: set[tuple[object, ...]] = set()

    def report(self, key: tuple[object, ...], line: str, title: str, body: str) -> bool:
        """Log ``line`` and show ``title``/``body`` unless ``key`` was reported before; whether it was new."""
        with self._lock:
            if key in self._seen:
                return False
            self._seen.add(key)
        log.warning("%s", line)
        desktop(title, body)
        return True


def read_status() -> dict[str, Any] | None:
    """The running daemon's status, or None when no daemon runs: ``read_status()["sessions"]``.

    The file is believed only while its pid is alive and the pid lock is held: a killed
    daemon's stale file reads as "not running".
    """
    try:
        data = json.loads(status_path().read_bytes())
    except (OSError, ValueError):
        return None
    pid = data.get("pid") if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(pid, int) or not alive(pid) or not _lock_held():
        return None
    return data


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs: it exists and, where ``/proc`` tells, is not a zombie waiting to be reaped.

    Example: ``alive(read_status()["pid"])``; False soon after that daemon exits.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rpartition(b")")[2].split()[:1] != [b"Z"]
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (macOS): ask the kernel
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive all the same
    return True


def _lock_held() -> bool:
    from ssocred.adapters import locks

    path = runtime_dir() / LOCK_FILE
    if not path.exists():
        return False
    lock = locks.Lock(path)
    if not locks.try_acquire(lock):
        return True
    lock.release()
    return False
