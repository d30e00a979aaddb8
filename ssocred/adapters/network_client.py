"""The daemon's network worker: a child process that makes the AWS calls, so the daemon never loads botocore.

botocore and the clients it builds stay in the process that loaded them (about 17 MB that a
long-running daemon would keep for a few calls an hour). A daemon calls ``delegate()`` once; from then
on the SSO adapters (``oidc``, ``portal``, ``sts``) send their requests here instead of making them,
and this module runs them in ``python -m ssocred.daemon.worker``: started on the first call,
reused while calls keep coming (its clients are built once and shared by concurrent calls), and
told to exit (its stdin closed) after ``idle_seconds()`` without one. A worker that dies mid-call
fails that call with a ServiceError; the next call starts a new one.

The pipe carries pickled ``(id, op, args)`` requests and ``(id, ok, value)`` answers, each after a
4-byte length. Both ends are this user's processes, parent and child; tokens and keys cross it and
are never logged. Example: ``delegate()`` then ``Portal("us-east-1").role_credentials(...)``.
"""

from __future__ import annotations

import logging
import os
import pickle
import struct
import subprocess
import sys
import threading
from typing import Any

from ssocred.errors import ServiceError, SsocredError

#: How long a worker may sit without a call before it is told to exit, unless the variable says otherwise.
DEFAULT_IDLE = 30.0
IDLE_VARIABLE = "SSOCRED_NETWORK_WORKER_IDLE"
#: A call has ``aws.budget()`` (retries included); this much longer and the worker is taken for hung.
GRACE = 30.0
#: The ops a worker answers (``ssocred.daemon.worker.OPS``).
OIDC = "oidc"
PORTAL = "portal"
ASSUME_ROLE = "assume-role"
HEADER = struct.Struct(">I")

log = logging.getLogger("ssocred.daemon")
_active = False
_protect = False
_worker: Worker | None = None
_lock = threading.Lock()


def delegate(*, protect: bool = False) -> None:
    """Make this process's SSO adapters call through a worker process from now on: ``delegate()`` in the daemon.

    ``protect``: the worker keeps its memory out of core dumps, debuggers and swap as a memory-store
    daemon does (``ssocred.adapters.memory_guard``).
    """
    global _active, _protect
    _active, _protect = True, protect


def active() -> bool:
    """Whether AWS calls go through the worker (``delegate()`` was called): ``if active(): call(...)``."""
    return _active


def idle_seconds() -> float:
    """``$SSOCRED_NETWORK_WORKER_IDLE`` seconds (at least 0.1), else 30: ``idle_seconds() == 30.0``."""
    raw = os.environ.get(IDLE_VARIABLE, "").strip()
    try:
        return max(float(raw), 0.1) if raw else DEFAULT_IDLE
    except ValueError:
        return DEFAULT_IDLE


def call(op: str, *args: Any) -> Any:
    """Run ``op`` with ``args`` in the worker: its value, or the exception it raised, raised here.

    Example: ``call(PORTAL, "us-east-1", "list_accounts", "the account list", expect, kwargs)``
    """
    global _worker
    while True:
        with _lock:
            if _worker is None or not _worker.accepting():
                _worker = Worker()
            worker = _worker
        try:
            return worker.call(op, args)
        except _Retired:  # it was told to exit just now, before this call reached it: the next one takes it
            continue


def current_pid() -> int | None:
    """The running worker's pid, or None: ``current_pid()`` after a call is a number for ``idle_seconds()``."""
    with _lock:
        return _worker.pid if _worker is not None and _worker.accepting() else None


def stop() -> None:
    """Tell the worker to exit once its calls in flight are answered: ``stop()`` when the daemon stops."""
    global _worker
    with _lock:
        worker, _worker = _worker, None
    if worker is not None:
        worker.close()


class Worker:
    """One worker process and the calls in flight in it."""

    def __init__(self) -> None:
        # stdin and stdout are the pipe; stderr is the daemon's (its log, or where it writes).
        argv = [sys.executable, "-m", "ssocred.daemon.worker", *(["--protect"] if _protect else [])]
        self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True)
        self.pid = self._proc.pid
        self._send_lock = threading.Lock()
        self._state = threading.Lock()
        self._waiting: dict[int, _Pending] = {}
        self._next = 0
        self._closed = False
        self._timer: threading.Timer | None = None
        threading.Thread(target=self._read, name="ssocred-network-worker", daemon=True).start()
        log.info("network worker started (pid %d)", self.pid)

    def accepting(self) -> bool:
        """Whether new calls may go to this worker (it was not told to exit, nor has it ended)."""
        with self._state:
            return not self._closed

    def call(self, op: str, args: tuple[Any, ...]) -> Any:
        from ssocred.adapters import aws

        pending = _Pending()
        with self._state:
            if self._closed:
                raise _Retired()
            ident = self._next = self._next + 1
            self._waiting[ident] = pending
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        frame = pickle.dumps((ident, op, args), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            with self._send_lock:
                assert self._proc.stdin is not None
                self._proc.stdin.write(HEADER.pack(len(frame)) + frame)
                self._proc.stdin.flush()
        except (OSError, ValueError):
            self._fail_all("the network worker exited")
        if not pending.done.wait(aws.budget() + GRACE):
            log.warning("network worker (pid %d) did not answer a call in time: stopping it", self.pid)
            self._proc.kill()
            self._fail_all("the network worker did not answer in time")
        self._finished()
        if pending.ok:
            return pending.value
        raise pending.value

    def close(self) -> None:
        """Close the worker's stdin (it exits once it reads the end) and stop taking calls."""
        with self._state:
            if self._closed:
                return
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
        self._close_stdin()

    def _close_stdin(self) -> None:
        try:
            with self._send_lock:
                assert self._proc.stdin is not None
                self._proc.stdin.close()
        except OSError:
            pass

    def _finished(self) -> None:
        """After a call: when none is left in flight, exit after ``idle_seconds()`` unless another comes."""
        with self._state:
            if self._waiting or self._closed:
                return
            self._timer = threading.Timer(idle_seconds(), self._retire)
            self._timer.daemon = True
            self._timer.start()

    def _retire(self) -> None:
        with self._state:  # checked and closed at once: a call that comes later starts a new worker
            if self._waiting or self._closed:
                return
            self._closed = True
        log.info("network worker (pid %d) idle for %g s: exiting", self.pid, idle_seconds())
        self._close_stdin()

    def _read(self) -> None:
        """Hand each answer to its caller until the worker's stdout ends; then fail what is left and reap it."""
        stream = self._proc.stdout
        assert stream is not None
        try:
            while True:
                head = stream.read(HEADER.size)
                if len(head) < HEADER.size:
                    break
                answer = _answer(stream.read(HEADER.unpack(head)[0]))
                if answer is None:  # the stream is broken: no later frame can be trusted either
                    log.error("network worker (pid %d) sent an answer that could not be read: stopping it", self.pid)
                    self._proc.kill()
                    break
                ident, ok, value = answer
                with self._state:
                    pending = self._waiting.pop(ident, None)
                if pending is not None:
                    pending.ok, pending.value = ok, value
                    pending.done.set()
        except (OSError, ValueError):
            pass
        self._fail_all("the network worker exited")
        code = self._proc.wait()
        log.info("network worker (pid %d) exited (status %d)", self.pid, code)

    def _fail_all(self, message: str) -> None:
        with self._state:
            self._closed = True
            waiting, self._waiting = self._waiting, {}
        for pending in waiting.values():
            pending.ok, pending.value = False, ServiceError(f"{message} during the request", fix="try again")
            pending.done.set()


class _Retired(Exception):
    """The worker stopped taking calls before this one was sent: nothing of it ran."""


class _Pending:
    """One call's answer, once ``done`` is set."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.ok = False
        self.value: Any = None


def _answer(body: bytes) -> tuple[int, bool, Any] | None:
    """``(id, ok, value)`` of one answer, or None when it cannot be read."""
    try:
        ident, ok, value = pickle.loads(body)  # noqa: S301 - our own child, over a pipe only we hold
    except Exception:  # any failure to read: the caller stops the worker and fails its calls
        return None
    if not ok and not isinstance(value, BaseException):
        value = ServiceError("the network worker failed the request")
    if isinstance(value, SsocredError):
        _redacted(value)
    return ident, bool(ok), value


def _redacted(exc: SsocredError) -> None:
    """Remove from ``exc`` the secrets this process knows (``logs.redact_all``), which the worker's own
    cleaning of server text did not: ``_redacted(error)`` before it is raised here."""
    from ssocred.adapters.logs import REDACTOR

    exc.message = REDACTOR.redact(exc.message)
    exc.args = (exc.message, *exc.args[1:])
    if exc.fix is not None:
        exc.fix = REDACTOR.redact(exc.fix)
