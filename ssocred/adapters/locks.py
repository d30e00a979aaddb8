"""Every cross-process lock of ssocred: one lock file each, one timeout rule, one error.

On POSIX a lock is ``flock`` on a file opened ``O_RDWR|O_CREAT|O_NOFOLLOW|O_CLOEXEC`` (0600).
After each successful ``flock`` the path must still name the locked inode, else the lock is
dropped and taken again: a holder may therefore unlink the file as the very last step of its
hold (``remove_held``), and whoever comes next simply makes a new one. Every acquisition opens
its own descriptor, so a lock excludes other threads of this process as well as other
processes. Elsewhere (Windows) ``filelock.FileLock`` does the work and files are never removed.

Waiting polls until a deadline (``TIMEOUT`` unless told otherwise); running out raises
``LockTimeout``, a ``ServiceError`` (exit 5).

Example: ``with held(Lock(lock_dir() / "role-x.lock"), "role 'Admin' in 111122223333"): ...``
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from ssocred.errors import ConfigError, ServiceError

#: How long a caller waits for a lock that another process holds, in seconds.
TIMEOUT = 120.0
#: Polling starts at the first value and backs off to the second.
_POLL_FIRST, _POLL_MAX = 0.001, 0.05
_POSIX = os.name == "posix"
_FLAGS = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


class LockTimeout(ServiceError, TimeoutError):
    """A lock stayed held too long: ``LockTimeout("SSO session 'corp'", 120).line()``."""

    def __init__(self, what: str, waited: float, holder: int | None = None) -> None:
        who = f"another ssocred process (pid {holder})" if holder else "another ssocred process"
        look = f"look at process {holder} (ps -p {holder})" if holder else "look for a hung ssocred process"
        super().__init__(f"{who} has held the lock of {what} for {waited:g} s",
                         fix=f"try again; if it persists, {look}")
        self.what = what
        self.holder = holder

    def __str__(self) -> str:
        return self.message


class Lock:
    """One lock file: ``Lock("/run/user/1000/ssocred/locks/x.lock", "role 'Admin'").acquire(timeout=5)``.

    Reentrant within a thread (like ``filelock.FileLock``); each thread's hold is its own.
    ``what`` names the lock in a timeout error.
    """

    def __init__(self, path: str | os.PathLike[str], what: str | None = None) -> None:
        self.lock_file = os.fspath(path)
        self.what = what or self.lock_file
        self._local = threading.local()
        self._fallback: Any = None

    # --- filelock-compatible surface --------------------------------------------------------

    @property
    def is_locked(self) -> bool:
        """Whether this thread holds the lock: ``lock.is_locked``."""
        return self._count() > 0

    def acquire(self, timeout: float | None = None) -> _Acquired:
        """Take the lock within ``timeout`` s, else LockTimeout: ``with lock.acquire(timeout=0): ...``.

        0 does not wait at all; None or a negative value (filelock's "forever") mean ``TIMEOUT``:
        no ssocred process waits for a lock without end.
        """
        limit = TIMEOUT if timeout is None or timeout < 0 else timeout
        count = self._count()
        if count:
            self._local.count = count + 1
            return _Acquired(self)
        if _POSIX:
            self._local.fd = _take(self.lock_file, limit, self.what)
        else:
            self._take_fallback(limit)
        self._local.count = 1
        return _Acquired(self)

    def release(self) -> None:
        """Give up one level of this thread's hold; the last one frees the lock: ``lock.release()``."""
        count = self._count()
        if count == 0:
            return
        self._local.count = count - 1
        if count > 1:
            return
        if _POSIX:
            fd, self._local.fd = self._local.fd, None
            os.close(fd)  # closing the only descriptor of this open file drops the flock
        else:
            self._fallback.release()

    def __enter__(self) -> Lock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    # --- internals ----------------------------------------------------------------------------

    def _count(self) -> int:
        count: int = getattr(self._local, "count", 0)
        return count

    def _held_fd(self) -> int | None:
        fd: int | None = getattr(self._local, "fd", None) if self._count() else None
        return fd

    def _take_fallback(self, limit: float) -> None:
        import filelock

        if self._fallback is None:
            self._fallback = filelock.FileLock(self.lock_file, mode=0o600)
        try:
            self._fallback.acquire(timeout=limit)
        except filelock.Timeout:
            raise _timeout(self.what, limit) from None


class _Acquired:
    """What ``Lock.acquire`` returns, so that ``with lock.acquire(timeout=1):`` releases once."""

    def __init__(self, lock: Lock) -> None:
        self.lock = lock

    def __enter__(self) -> Lock:
        return self.lock

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.lock.release()


@contextlib.contextmanager
def held(lock: Lock, what: str, timeout: float = TIMEOUT) -> Iterator[Lock]:
    """Hold ``lock`` for a block, waiting at most ``timeout`` s; LockTimeout names ``what``.

    Example: ``with held(store.session_lock("corp"), "SSO session 'corp'"): ...``
    """
    try:
        lock.acquire(timeout=timeout)
    except LockTimeout as exc:
        raise _timeout(what, timeout, exc.holder) from None
    try:
        yield lock
    finally:
        lock.release()


def try_acquire(lock: Lock) -> bool:
    """Take ``lock`` only if nobody holds it: ``if try_acquire(lock): ...; lock.release()``."""
    try:
        lock.acquire(timeout=0)
    except LockTimeout:
        return False
    return True


def remove_held(lock: Lock) -> bool:
    """Unlink the file of a lock this thread holds; False where that is not possible (Windows).

    Must be the very last step of the hold: from the unlink on, another process can take the
    lock through a new file. Example: ``with held(lock, "x"): work(); remove_held(lock)``.
    """
    fd = lock._held_fd()
    if not _POSIX or fd is None:
        return False
    try:
        if not _same_file(fd, os.stat(lock.lock_file, follow_symlinks=False)):
            return False
        os.unlink(lock.lock_file)
    except FileNotFoundError:
        return False
    return True


def held_fd(lock: Lock) -> int | None:
    """The descriptor that holds ``lock`` for this thread (POSIX), else None.

    A flock belongs to the open file: a child given this descriptor holds the lock with us, and
    keeps holding it should we die. Example: ``subprocess.Popen(..., pass_fds=(held_fd(lock),))``.
    """
    return lock._held_fd() if _POSIX else None


def discard(lock: Lock) -> bool:
    """Remove a lock file nobody holds (take it without waiting, unlink, release); False if busy.

    Example: ``discard(store.role_lock("corp", "111122223333", "Admin"))`` after its role is gone.
    """
    try:
        regular = stat.S_ISREG(os.lstat(lock.lock_file).st_mode)
    except FileNotFoundError:
        return False
    if not _POSIX or not regular or not try_acquire(lock):
        return False  # a link or anything else ssocred did not make is not ours to remove
    try:
        return remove_held(lock)
    finally:
        lock.release()


def _take(path: str, limit: float, what: str) -> int:
    """A descriptor of ``path`` holding its flock, the path still naming that very file."""
    import fcntl

    deadline = time.monotonic() + limit
    delay = _POLL_FIRST
    while True:
        fd = _open(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            left = deadline - time.monotonic()
            if left <= 0:
                raise _timeout(what, limit, _holder(path)) from None
            time.sleep(min(delay, left))
            delay = min(delay * 2, _POLL_MAX)
            continue
        except BaseException:
            os.close(fd)
            raise
        try:
            current = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:
            current = None
        if current is not None and _same_file(fd, current):
            mark_holder(fd)
            return fd
        # The holder before us unlinked the file as it let go: the lock lives on in a new file.
        os.close(fd)
        if time.monotonic() > deadline + _POLL_MAX:  # only a file unlinked again and again gets here
            raise _timeout(what, limit)


def _open(path: str) -> int:
    try:
        return os.open(path, _FLAGS, 0o600)
    except OSError as exc:
        if os.path.islink(path):
            raise ConfigError(
                f"the lock file {path} is a symbolic link; ssocred does not follow links there",
                fix=f"remove it (rm {path})",
            ) from None
        raise ConfigError(
            f"cannot open the lock file {path} ({exc.strerror})", fix=f"check the permissions of {Path(path).parent}"
        ) from None


def _same_file(fd: int, current: os.stat_result) -> bool:
    mine = os.fstat(fd)
    return mine.st_nlink > 0 and (current.st_ino, current.st_dev) == (mine.st_ino, mine.st_dev)


_compat: type[LockTimeout] | None = None


def mark_holder(fd: int) -> None:
    """Write this process's pid into a lock file it holds, for the message of whoever waits too long.

    Example: the refresher that inherited a lock calls ``mark_holder(fd)``; a pid is not a secret.
    """
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, b"%d\n" % os.getpid(), 0)


def _holder(path: str) -> int | None:
    """The pid a lock file names, when that process still runs."""
    try:
        with open(path, "rb") as fh:
            pid = int(fh.read(32).strip() or b"0")
    except (OSError, ValueError):
        return None
    if pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except OSError:
        pass  # alive, but not ours to signal
    return pid


def _timeout(what: str, waited: float, holder: int | None = None) -> LockTimeout:
    """A LockTimeout; also a ``filelock.Timeout`` when a caller may still be catching that."""
    global _compat
    # Callers written for filelock catch filelock.Timeout; they have imported filelock to name it.
    # Importing it here instead would cost every lock user tens of milliseconds.
    filelock = sys.modules.get("filelock")
    if filelock is None:
        return LockTimeout(what, waited, holder)
    if _compat is None:
        _compat = cast("type[LockTimeout]", type("LockTimeout", (LockTimeout, filelock.Timeout), {}))
    return _compat(what, waited, holder)
