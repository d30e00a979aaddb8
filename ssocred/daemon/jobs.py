"""The daemon's work: the scheduler and its refresh and pre-fetch jobs.

Its work list is the store index, read again every ``--scan-interval``, so logins and
logouts are picked up without a restart. One APScheduler job per session refreshes its token
through ``tokens.refresh`` (the cross-process singleflight) before any client would need to; one
job per recently used role fetches its credentials before they enter botocore's window. Each
session's jobs run on that session's own executor (``SESSION_WORKERS`` threads); what they do is in
``ssocred.daemon.bodies``.
Example: ``Daemon(Options(8.0, 3600.0, 30.0, 30.0, 600.0)).start()``
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import gc
import logging
import os
import random
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from ssocred.adapters import logs, notify
from ssocred.adapters.store import Store
from ssocred.adapters.store_index import SessionEntry
from ssocred.daemon.bodies import JobBodies, Role, Work, iso, role_id, session_of
from ssocred.daemon.bodies import Options as Options
from ssocred.daemon.profile_sync import ProfileSync
from ssocred.errors import SsocredError
from ssocred.model import schedule
from ssocred.model.sso import iso_z
from ssocred.usecases import tokens

if TYPE_CHECKING:
    from ssocred.adapters.store_index import Index

log = logging.getLogger("ssocred.daemon")

__all__ = ["Daemon", "Options", "malloc_call"]

#: A job that did not say when to run again looks again after this long.
FALLBACK_INTERVAL = 3600
#: How often the scan also sweeps the keyring and lock files of what killed processes left.
SWEEP_INTERVAL = 600.0
#: How long a stop waits for refreshes and fetches in flight (a rotated refresh token must be saved).
STOP_TIMEOUT = 30.0
#: A job never plans its own next run sooner than this: its current run still counts as running.
MIN_REPLAN = 1.0
#: The profile sync's first run after start (and after a login): the sessions are scanned first.
PROFILES_DELAY = 2.0
#: Worker threads of each session: its refresh and a pre-fetch, or two pre-fetches, at once. Each
#: session has its own, so a slow or failing service holds up only the sessions behind it.
SESSION_WORKERS = 2


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc)


def _settled(entry: object) -> object:
    """An index session entry without its refresh-in-flight and rejection marks (None stays None)."""
    if isinstance(entry, SessionEntry):
        return dataclasses.replace(entry, refresh_started_at=None, rejected_at=None)
    return entry


def malloc_call(call: str, *args: int) -> None:
    """Call a glibc allocator tuning function where there is one (Linux); elsewhere nothing."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            getattr(ctypes.CDLL(None), call)(*args)
        except (OSError, AttributeError):
            pass


class Daemon(JobBodies):
    """The scheduler and its jobs: ``d = Daemon(Options()); d.start(); ...; d.stop()``."""

    def __init__(self, options: Options, store: Store | None = None) -> None:
        self.opts = options
        self.store = store or Store()
        self.started_at = time.time()
        self._lock = threading.RLock()
        self._idle = threading.Condition(self._lock)
        self._jobs: dict[str, Work] = {}  # "session:<name>" and "role:<session>:<account>:<role>"
        self._running: set[str] = set()
        self._reporter = notify.Reporter()
        self._clock: tuple[float, float] | None = None
        self._scan_error: str | None = None
        self._export_error: str | None = None
        self._next_sweep = 0.0  # monotonic; the first scan sweeps
        self._status = notify.StatusWriter()
        self._draw = random.Random()  # noqa: S311 - retry jitter, not a secret
        self._sched: Any = None
        self._profiles = ProfileSync(self.store)
        self._executors: dict[str, Any] = {}  # a session's name: its workers

    def start(self) -> None:
        """Start the scheduler: the scan runs at once, then every ``scan_interval`` seconds."""
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        self._sched = BackgroundScheduler(
            # The scan alone runs on "default"; refreshes and fetches run on their session's executor,
            # the profile sync (many portal calls) on its own.
            executors={"default": ThreadPoolExecutor(1), "watchdog": ThreadPoolExecutor(1),
                       "profiles": ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=dt.timezone.utc,
        )
        now = _utc(time.time())
        self._sched.add_job(self._scan, "interval", seconds=self.opts.scan_interval, id="scan", next_run_time=now)
        # Soon after start, then on its own schedule; a login brings it forward (``_kick_profiles``).
        self._sched.add_job(self._profiles.run, "interval", seconds=self.opts.sync_interval, id="profiles",
                            executor="profiles", next_run_time=_utc(time.time() + PROFILES_DELAY))
        interval = notify.watchdog_interval()
        if interval:
            # Its own executor: the pings show that the scheduler runs, even while every worker waits.
            self._sched.add_job(notify.sd_notify, "interval", args=["WATCHDOG=1"], seconds=interval,
                                id="watchdog", executor="watchdog", next_run_time=now)
        self._sched.start()
        self._write_status()  # before anyone is told the daemon is ready

    def stop(self, timeout: float = STOP_TIMEOUT) -> bool:
        """Stop scheduling and wait up to ``timeout`` for jobs in flight; False if some still run."""
        self._sched.shutdown(wait=False)
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._running and deadline > time.monotonic():
                self._idle.wait(deadline - time.monotonic())
            left = sorted(self._running)
        if left:
            log.warning("stopping while still running: %s", ", ".join(left))
        return not left

    # --- the scan: the work list and clock jumps ----------------------------------------------

    def _scan(self) -> None:
        try:
            self._scan_once()
        except Exception as exc:  # the scan must keep running: it is what recovers everything else
            log.exception("the scan failed with %s", type(exc).__name__)
        self._write_status()

    def _scan_once(self) -> None:
        clock = (time.monotonic(), time.time())
        jump = schedule.clock_jump(self._clock, clock) if self._clock else 0.0
        self._clock = clock
        try:
            index = self.store.index()
        except SsocredError as exc:
            if exc.line() != self._scan_error:
                log.warning("cannot read the store index: %s", exc.line())
            self._scan_error = exc.line()
            return
        self._scan_error = None
        exported = self._exported()
        with self._lock:
            self._sync_sessions(index, clock[1])
            self._sync_roles(index, clock[1], exported)
            self._drop_idle_executors()
            if jump:
                log.warning("the wall clock moved %+.0f s more than the time elapsed (suspend or clock change); "
                            "checking every session and role now", jump)
                for job_id in self._jobs:
                    self._plan(job_id, clock[1])
        if exported:
            self._sync_exports()
        if clock[0] >= self._next_sweep:
            self._sweep(clock[0])

    def _exported(self) -> set[Role]:
        """The roles exported to the credentials file (kept fresh whether used or not)."""
        from ssocred.usecases import exports

        try:
            roles = exports.roles()
        except SsocredError as exc:
            if exc.line() != self._export_error:
                log.warning("cannot read the credentials file: %s", exc.line())
            self._export_error = exc.line()
            return set()
        self._export_error = None
        return roles

    def _sync_exports(self) -> None:
        from ssocred.usecases import exports

        try:
            names = exports.sync(self.store)
        except SsocredError as exc:
            log.warning("could not update the credentials file: %s", logs.REDACTOR.redact(exc.line()))
            return
        if names:
            log.info("credentials file: wrote fresh credentials to %s", ", ".join(f"[{n}]" for n in names))

    def _kick_profiles(self) -> None:
        """Run the profile sync soon (after a login), keeping its schedule."""
        from apscheduler.jobstores.base import JobLookupError

        try:
            self._sched.modify_job("profiles", next_run_time=_utc(time.time() + PROFILES_DELAY))
        except JobLookupError:
            pass

    def _sweep(self, now: float) -> None:
        """Remove what killed writers left in the keyring and the lock dir (every SWEEP_INTERVAL)."""
        self._next_sweep = now + SWEEP_INTERVAL
        try:
            report = self.store.sweep()
        except SsocredError as exc:
            log.warning("could not sweep the store: %s", logs.REDACTOR.redact(exc.line()))
            return
        if report.generations or report.lock_files:
            log.info("swept %d unreferenced generations of keyring parts (%d items) and %d unused lock files",
                     report.generations, report.parts, report.lock_files)

    def _sync_sessions(self, index: Index, now: float) -> None:
        for name, entry in index.sessions.items():
            job_id = f"session:{name}"
            work = self._jobs.get(job_id)
            if work is None:
                work = Work(f"session {name}", body=functools.partial(self._session_job, name))
                self._add(job_id, work, now)
                log.info("session %s: watching it (token expires %s)", name, iso_z(entry.expires_at))
                if now - self.started_at > PROFILES_DELAY:
                    self._kick_profiles()  # a login while the daemon runs
            elif _settled(work.seen) != _settled(entry):
                # A login, or a refresh by another process: look at the token again (a refresh
                # merely begun, or one that failed, changes nothing to plan from).
                if work.blocked:
                    log.info("session %s: logged in again", name)
                    self._kick_profiles()
                work.blocked, work.failures, work.last_error = False, 0, None
                self._plan(job_id, now)
                for other in self._jobs.values():
                    if other.role and other.role[0] == name:
                        self._plan(role_id(other.role), now)
            work.seen = entry
        for job_id in [j for j in self._jobs if j.startswith("session:") and j[8:] not in index.sessions]:
            self._remove(job_id)
            tokens.forget_unsaved(self.store, job_id[8:])
            log.info("session %s: logged out; no longer refreshed", job_id[8:])

    def _sync_roles(self, index: Index, now: float, exported: set[Role]) -> None:
        hours = self.opts.prefetch_hours
        wanted = {c.key: c for c in index.creds if c.session in index.sessions and (
            c.key in exported or (hours > 0 and schedule.recently_requested(c.last_requested_at, now, hours)))}
        for key, entry in wanted.items():
            job_id = role_id(key)
            work = self._jobs.get(job_id)
            due = schedule.prefetch_at(entry.expiration, entry.updated_at)
            if work is None:
                work = Work(f"role {key[2]} in {key[1]} (session {key[0]})", role=key,
                             body=functools.partial(self._role_job, key))
                self._add(job_id, work, due)
                log.info("%s: pre-fetching it (last used %s)", work.label, iso_z(entry.last_requested_at))
            elif work.seen != entry:
                old = work.seen
                refetched = getattr(old, "expiration", None) != entry.expiration
                # A new fetch elsewhere replans the job; a recorded request only ends an access denial.
                if refetched or (work.blocked and getattr(old, "last_requested_at", 0) != entry.last_requested_at):
                    work.blocked, work.failures, work.last_error = False, 0, None
                    self._plan(job_id, due)
            work.seen = entry
        for job_id, work in list(self._jobs.items()):
            if work.role is not None and work.role not in wanted:
                self._remove(job_id)
                log.info("%s: not used for %g h, or logged out; no longer pre-fetched", work.label, hours)

    # --- running jobs -------------------------------------------------------------------------

    def _add(self, job_id: str, work: Work, at: float) -> None:
        self._jobs[job_id] = work
        work.next_at = at
        self._sched.add_job(self._run, "interval", args=[job_id], seconds=FALLBACK_INTERVAL, id=job_id,
                            next_run_time=_utc(at), replace_existing=True,
                            executor=self._executor(session_of(job_id, work)))

    def _executor(self, name: str) -> str:
        """The alias of session ``name``'s executor, made on first use: ``"session:corp"``."""
        from apscheduler.executors.pool import ThreadPoolExecutor

        if name not in self._executors:
            self._executors[name] = ThreadPoolExecutor(SESSION_WORKERS)
            self._sched.add_executor(self._executors[name], alias=f"session:{name}")
        return f"session:{name}"

    def _drop_idle_executors(self) -> None:
        """Let the workers of sessions that have no job left end (after a logout)."""
        busy = {session_of(job_id, work) for job_id, work in self._jobs.items()}
        for name in [n for n in self._executors if n not in busy]:
            executor = self._executors.pop(name)
            self._sched.remove_executor(f"session:{name}", shutdown=False)
            executor.shutdown(wait=False)  # a job still running there finishes first

    def _remove(self, job_id: str) -> None:
        from apscheduler.jobstores.base import JobLookupError

        self._jobs.pop(job_id, None)
        try:
            self._sched.remove_job(job_id)
        except JobLookupError:
            pass

    def _plan(self, job_id: str, at: float | None, *, own: bool = False) -> None:
        """Run ``job_id`` at ``at`` (None: only once the scan sees a change); running jobs plan themselves."""
        from apscheduler.jobstores.base import JobLookupError

        work = self._jobs.get(job_id)
        if work is None or (job_id in self._running and not own):
            return
        work.next_at = at
        when = None if at is None else _utc(max(at, time.time() + MIN_REPLAN) if own else at)
        try:
            self._sched.modify_job(job_id, next_run_time=when)
        except JobLookupError:
            pass

    def _run(self, job_id: str) -> None:
        with self._lock:
            work = self._jobs.get(job_id)
            if work is None or work.body is None:
                return
            self._running.add(job_id)
        try:
            at = work.body()
        except SsocredError as exc:  # the network, the service or the keyring: try again later
            at = self._backoff(work, exc.line())
        except Exception as exc:
            log.exception("%s: unexpected %s", work.label, type(exc).__name__)
            at = self._backoff(work, f"unexpected {type(exc).__name__}")
        with self._idle:
            self._plan(job_id, at, own=True)
            self._running.discard(job_id)
            self._idle.notify_all()
            idle = not self._running
        self._write_status()
        if idle:  # boto3 clients die in reference cycles: collect them, and hand the pages back
            gc.collect()
            malloc_call("malloc_trim", 0)

    # --- status -------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The non-secret status: ``{"pid", "started_at", "sessions": {...}, "prefetch": [...]}``."""
        with self._lock:
            sessions = {
                job_id[8:]: {"last_refresh": iso(w.last_done), "next_refresh": iso(w.next_at),
                             "last_error": w.last_error}
                for job_id, w in sorted(self._jobs.items()) if w.role is None
            }
            prefetch = [
                {"session": w.role[0], "account_id": w.role[1], "role_name": w.role[2], "next_fetch": iso(w.next_at),
                 "last_error": w.last_error}
                for _, w in sorted(self._jobs.items()) if w.role is not None
            ]
        commit = tokens.stats.last_commit_ms
        return {"pid": os.getpid(), "started_at": iso_z(self.started_at), "sessions": sessions, "prefetch": prefetch,
                "refreshes": tokens.stats.refreshed,
                "last_commit_ms": round(commit, 1) if commit is not None else None}

    def _write_status(self) -> None:
        self._status.write(self.status())
