"""Keeping a memory-store daemon's secrets in its memory: out of core dumps, debuggers and (where allowed) swap.

What ``protect`` does, and why only this much:

* ``RLIMIT_CORE`` 0 (every POSIX system): a crash writes no core file holding the tokens.
* ``prctl(PR_SET_DUMPABLE, 0)`` (Linux): no core dump either way, and no other process of the same
  user may ptrace it (gdb, py-spy) or read its memory, ``/proc/<pid>/mem``, ``environ`` or ``fd``
  (those files then belong to root). ``/proc/<pid>/status``, ``stat`` and ``cmdline`` stay readable,
  as do the pid lock, the status file and the socket, which is all that ssocred and its tests read.
* ``mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)`` (Linux): no page is written to swap. Only when
  locking cannot fail later: with ``MCL_FUTURE`` every later allocation must fit under
  ``RLIMIT_MEMLOCK``, and one that does not fails (a MemoryError in the middle of a refresh), so it is
  done only when the limit is unlimited or at least ``LOCK_ENOUGH`` (the soft limit is first raised to
  the hard one), or the process may lock any amount (``CAP_IPC_LOCK``). ``MCL_ONFAULT`` locks pages as
  they are used, so thread stacks are not made resident whole. Otherwise one log line says that swap
  may hold the secrets and how to allow locking (``ulimit -l unlimited``, or ``LimitMEMLOCK=infinity``
  in a systemd unit).

Example: ``for line in protect(): log.info("%s", line)`` first thing in ``ssocred daemon --store memory``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

#: A memory lock limit this large leaves room for anything the daemon does. The limit counts mapped
#: address space, not resident pages: about 180 MB idle, plus a thread's 8 MB stack for each client
#: answered at once (up to the socket's backlog of 128: about 1.2 GB in all).
LOCK_ENOUGH = 2 << 30
PR_SET_DUMPABLE = 4
MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT = 1, 2, 4
#: The bit of ``CAP_IPC_LOCK`` in ``CapEff`` of ``/proc/self/status``.
CAP_IPC_LOCK = 14
_HOW = "ulimit -l unlimited before starting it, or LimitMEMLOCK=infinity in its systemd unit"


def protect() -> list[str]:
    """Apply the protections this system allows; one line for each that could not be applied.

    Example: ``protect() == []`` as root on Linux; ``["memory is not locked ... swap may hold ..."]`` elsewhere.
    """
    import resource

    notes: list[str] = []
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (OSError, ValueError) as exc:
        notes.append(f"core dumps stay allowed ({_reason(exc)}): a crash could write the secrets to disk")
    if not sys.platform.startswith("linux"):
        notes.append("memory is not locked and debuggers are not kept out (only done on Linux): "
                     "swap may hold the secrets")
        return notes
    libc = _libc()
    if libc is None or libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        notes.append("other processes of this user may still read this daemon's memory (prctl failed)")
    note = _lock(libc)
    if note is not None:
        notes.append(note)
    return notes


def locked_limit() -> tuple[int, bool]:
    """``RLIMIT_MEMLOCK``'s soft limit after raising it to the hard one, and whether it allows locking safely.

    Example: ``locked_limit() == (resource.RLIM_INFINITY, True)`` under ``LimitMEMLOCK=infinity``.
    """
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or hard > soft):
        try:
            resource.setrlimit(resource.RLIMIT_MEMLOCK, (hard, hard))
            soft = hard
        except (OSError, ValueError):
            pass
    enough = soft == resource.RLIM_INFINITY or soft >= LOCK_ENOUGH or _may_lock_any()
    return soft, enough


def _lock(libc: Any) -> str | None:
    """Lock the memory when that is safe; the line to log when it is not done."""
    import ctypes
    import resource

    soft, enough = locked_limit()
    if not enough:
        return (f"memory is not locked (RLIMIT_MEMLOCK is {soft >> 20} MiB, less than {LOCK_ENOUGH >> 20} MiB): "
                f"swap may hold the secrets; to allow locking, run {_HOW}")
    if libc is None:
        return "memory is not locked (no C library found): swap may hold the secrets"
    if libc.mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0:
        error = ctypes.get_errno()
        shown = "unlimited" if soft == resource.RLIM_INFINITY else f"{soft >> 20} MiB"
        return (f"memory is not locked (mlockall: {os.strerror(error)}; RLIMIT_MEMLOCK {shown}): swap may hold "
                f"the secrets; to allow locking, run {_HOW}")
    return None


def _libc() -> Any:
    """The C library the interpreter runs on (its own symbols), or None."""
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _may_lock_any() -> bool:
    """Whether this process holds ``CAP_IPC_LOCK``, which lifts the memory lock limit."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"CapEff:"):
                    return bool(int(line.split()[1], 16) >> CAP_IPC_LOCK & 1)
    except (OSError, ValueError, IndexError):
        pass
    return False


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or type(exc).__name__
