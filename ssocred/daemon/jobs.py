"""The daemon's work: the scheduler and its refresh and pre-fetch jobs.

Its work list is the store index, read again every ``--scan-interval``, so logins and
logouts are picked up without a restart. One APScheduler job per session refreshes its token
through ``tokens.refresh`` (the cross-process singleflight) before any client would need to; one
job per recently used role fetches its credentials before they enter botocore's window.
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
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ssocred.adapters import logs, notify
from ssocred.adapters.store import Store
from ssocred.adapters.store_index import SessionEntry
from ssocred.daemon.profile_sync import ProfileSync
from ssocred.errors import AccessDenied, LoginRequired, SsocredError
from ssocred.model import schedule
from ssocred.model.sso import Token, iso_z, login_command
from ssocred.usecases import tokens

if TYPE_CHECKING:
    from ssocred.adapters.store_index import Index

log = logging.getLogger("ssocred.daemon")

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
#: One refresh or fetch at a time: each reads and writes the keyring, and gnome-keyring fails
#: lookups ("prompt dismissed") when one process opens many connections at once.
_NETWORK = threading.Lock()

Role = tuple[str, str, str]


@dataclass(frozen=True)
class Options:
    """The daemon's settings: ``Options(prefetch_hours=8, warn_before=3600)``."""

    prefetch_hours: float = 8.0
    warn_before: float = 3600.0
    scan_interval: float = 30.0
    retry_min: float = schedule.RETRY_MIN
    retry_max: float = schedule.RETRY_MAX
    sync_interval: float = 3600.0


@dataclass
class _Work:
    """One job's state: ``_Work("session corp")``; ``role`` is set for pre-fetch jobs."""

    label: str
    role: Role | None = None
    body: Callable[[], float | None] | None = None
    failures: int = 0
    last_error: str | None = None
    next_at: float | None = None
    last_done: float | None = None
    seen: object = None  # the index entry the job was last planned from
    blocked: bool = False  # session: needs a login; role: access denied (until its index entry changes)


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc)


def _iso(ts: float | None) -> str | None:
    return iso_z(ts) if ts is not None else None


def _settled(entry: object) -> object:
    """An index session entry without its refresh-in-flight and rejection marks (None stays None)."""
    if isinstance(entry, SessionEntry):
        return dataclasses.replace(entry, refresh_started_at=None, rejected_at=None)
    return entry


def _role_id(key: Role) -> str:
    return "role:" + ":".join(key)


def malloc_call(call: str, *args: int) -> None:
    """Call a glibc allocator tuning function where there is one (Linux); elsewhere nothing."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            getattr(ctypes.CDLL(None), call)(*args)
        except (OSError, AttributeError):
            pass


def _token_secrets(token: Token) -> list[str | None]:
    reg = token.registration
    return [token.access_token, token.refresh_token, reg.client_secret if reg else None]


class Daemon:
    """The scheduler and its jobs: ``d = Daemon(Options()); d.start(); ...; d.stop()``."""

    def __init__(self, options: Options, store: Store | None = None) -> None:
        self.opts = options
        self.store = store or Store()
        self.started_at = time.time()
        self._lock = threading.RLock()
        self._idle = threading.Condition(self._lock)
        self._jobs: dict[str, _Work] = {}  # "session:<name>" and "role:<session>:<account>:<role>"
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

    def start(self) -> None:
        """Start the scheduler: the scan runs at once, then every ``scan_interval`` seconds."""
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        self._sched = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(4), "watchdog": ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=dt.timezone.utc,
        )
        now = _utc(time.time())
        self._sched.add_job(self._scan, "interval", seconds=self.opts.scan_interval, id="scan", next_run_time=now)
        # Soon after start, then on its own schedule; a login brings it forward (``_kick_profiles``).
        self._sched.add_job(self._profiles.run, "interval", seconds=self.opts.sync_interval, id="profiles",
                            next_run_time=_utc(time.time() + PROFILES_DELAY))
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
                work = _Work(f"session {name}", body=functools.partial(self._session_job, name))
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
                        self._plan(_role_id(other.role), now)
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
            job_id = _role_id(key)
            work = self._jobs.get(job_id)
            due = schedule.prefetch_at(entry.expiration, entry.updated_at)
            if work is None:
                work = _Work(f"role {key[2]} in {key[1]} (session {key[0]})", role=key,
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

    def _add(self, job_id: str, work: _Work, at: float) -> None:
        self._jobs[job_id] = work
        work.next_at = at
        self._sched.add_job(self._run, "interval", args=[job_id], seconds=FALLBACK_INTERVAL, id=job_id,
                            next_run_time=_utc(at), replace_existing=True)

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

    def _backoff(self, work: _Work, line: str) -> float:
        work.failures += 1
        work.last_error = logs.REDACTOR.redact(line)
        delay = schedule.retry_delay(work.failures, self._draw.random(), self.opts.retry_min, self.opts.retry_max)
        log.warning("%s: %s (retrying in %.0f s, failure %d)", work.label, work.last_error, delay, work.failures)
        return time.time() + delay

    def _session_job(self, name: str) -> float | None:
        work = self._jobs.get(f"session:{name}")
        if work is None or work.blocked:
            return None  # logged out (the next scan drops the job), or waiting for a new login
        if tokens.unsaved(self.store, name) is not None:
            if not tokens.save_unsaved(self.store, name):
                return self._backoff(work, "the refreshed token is still not in the OS keyring (it is kept in "
                                           "memory and answers requests meanwhile)")
            log.info("session %s: the refreshed token is stored now", name)
        token = tokens.unsaved(self.store, name) or self.store.load_session(name)
        if token is None:
            return None
        logs.redact_all(_token_secrets(token))
        step = schedule.session_step(token, time.time(), self.opts.warn_before)
        if step.action == schedule.ENDED:
            self._needs_login(name, f"it expired at {iso_z(token.expires_at)}; run: {login_command(name)}")
            return None
        if step.ends_at is not None:
            self._reporter.report(
                ("ending", name, step.ends_at),
                f"session {name} ends at {iso_z(step.ends_at)} and cannot be refreshed past then; "
                f"log in again before: {login_command(name)}",
                "ssocred: SSO session ending", f"SSO session {name} ends at {iso_z(step.ends_at)}. "
                f"Run: {login_command(name)}")
        if step.action == schedule.WAIT:
            work.failures, work.last_error = 0, None
            return step.at
        began = time.time()
        done = tokens.stats.refreshed
        try:
            with _NETWORK:
                new = tokens.refresh(self.store, name, seen=token, force=True)
        except LoginRequired as exc:
            self._needs_login(name, exc.line())
            return None
        logs.redact_all(_token_secrets(new))
        if new.access_token == token.access_token:  # the refresh failed, but the token is still usable
            return self._backoff(work, f"the token could not be refreshed yet (it stays valid until "
                                       f"{iso_z(token.expires_at)})")
        ours = tokens.stats.refreshed > done
        if tokens.unsaved(self.store, name) is not None:
            return self._backoff(work, "token refreshed, but the OS keyring refused it; it is kept in memory "
                                       "and answers requests while the keyring is retried")
        work.failures, work.last_error, work.last_done = 0, None, new.issued_at
        at = schedule.session_step(new, time.time(), self.opts.warn_before).at
        with self._lock:
            work.seen = self.store.index().sessions.get(name)
        commit = f" (stored {tokens.stats.last_commit_ms:.0f} ms after the answer)" \
            if ours and tokens.stats.last_commit_ms is not None else ""
        log.info("session %s: token refreshed%s, expires %s, next refresh %s%s", name,
                 "" if ours or new.issued_at >= began else " by another process", iso_z(new.expires_at),
                 _iso(at), commit)
        return at

    def _role_job(self, key: Role) -> float | None:
        work = self._jobs.get(_role_id(key))
        session = self._jobs.get(f"session:{key[0]}")
        entry = self.store.index().find_creds(*key)
        if work is None or entry is None or session is None or session.blocked or work.blocked:
            return None
        due = schedule.prefetch_at(entry.expiration, entry.updated_at)
        if due > time.time():
            return due  # someone else fetched them meanwhile
        from ssocred.usecases import chain

        try:
            with _NETWORK:
                creds = chain.refetch(self.store, key)  # a role, or a role chained from one
        except LoginRequired as exc:
            self._needs_login(key[0], exc.line())
            return None
        except AccessDenied as exc:
            work.blocked, work.last_error = True, logs.REDACTOR.redact(exc.line())
            log.warning("%s: %s; not pre-fetched until it is used again", work.label, work.last_error)
            return None
        logs.redact_all([creds.secret_access_key, creds.session_token])
        work.failures, work.last_error, work.last_done = 0, None, creds.issued_at
        at = schedule.prefetch_at(creds.expiration, creds.issued_at)
        with self._lock:
            work.seen = self.store.index().find_creds(*key)
        log.info("%s: pre-fetched %s, expires %s, next fetch %s", work.label, creds.access_key_id,
                 iso_z(creds.expiration), iso_z(at))
        return at

    def _needs_login(self, name: str, line: str) -> None:
        """Stop refreshing ``name`` until it changes in the index; say so once."""
        work = self._jobs.get(f"session:{name}")
        if work is None or name not in self.store.index().sessions:
            return  # logged out meanwhile: nothing to tell
        work.blocked, work.last_error = True, logs.REDACTOR.redact(line)
        self._reporter.report(
            ("login", name, work.seen), f"session {name} cannot be refreshed: {work.last_error}",
            "ssocred: log in again", f"SSO session {name} cannot be refreshed. Run: {login_command(name)}")

    # --- status -------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The non-secret status: ``{"pid", "started_at", "sessions": {...}, "prefetch": [...]}``."""
        with self._lock:
            sessions = {
                job_id[8:]: {"last_refresh": _iso(w.last_done), "next_refresh": _iso(w.next_at),
                             "last_error": w.last_error}
                for job_id, w in sorted(self._jobs.items()) if w.role is None
            }
            prefetch = [
                {"session": w.role[0], "account_id": w.role[1], "role_name": w.role[2], "next_fetch": _iso(w.next_at),
                 "last_error": w.last_error}
                for _, w in sorted(self._jobs.items()) if w.role is not None
            ]
        commit = tokens.stats.last_commit_ms
        return {"pid": os.getpid(), "started_at": iso_z(self.started_at), "sessions": sessions, "prefetch": prefetch,
                "refreshes": tokens.stats.refreshed,
                "last_commit_ms": round(commit, 1) if commit is not None else None}

    def _write_status(self) -> None:
        self._status.write(self.status())
