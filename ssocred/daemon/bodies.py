"""The daemon's job bodies: a session's token refresh and a role's pre-fetch, and what each job remembers.

Each body runs on its session's own worker threads (``ssocred.daemon.jobs`` gives every session
an executor), so a slow or failing service delays only the session behind it. Network calls take
no process-wide lock: the keyring adapter serialises keyring calls by itself, and the session and
role locks keep each refresh and fetch single across threads and processes.
Example: ``daemon._session_job("corp")`` refreshes when due and returns when to look again.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ssocred.adapters import logs
from ssocred.errors import AccessDenied, LoginRequired
from ssocred.model import schedule
from ssocred.model.sso import Token, iso_z, login_command
from ssocred.usecases import tokens

if TYPE_CHECKING:
    from ssocred.adapters import notify
    from ssocred.adapters.store import Store

log = logging.getLogger("ssocred.daemon")

#: ``(session, account id, role name)`` of a pre-fetched role.
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
class Work:
    """One job's state: ``Work("session corp")``; ``role`` is set for pre-fetch jobs."""

    label: str
    role: Role | None = None
    body: Callable[[], float | None] | None = None
    failures: int = 0
    last_error: str | None = None
    next_at: float | None = None
    last_done: float | None = None
    seen: object = None  # the index entry the job was last planned from
    blocked: bool = False  # session: needs a login; role: access denied (until its index entry changes)


def iso(ts: float | None) -> str | None:
    """An ISO time or None: ``iso(0.0) == "1970-01-01T00:00:00Z"``."""
    return iso_z(ts) if ts is not None else None


def role_id(key: Role) -> str:
    """The job id of a role: ``role_id(("corp", "111122223333", "Admin")) == "role:corp:111122223333:Admin"``."""
    return "role:" + ":".join(key)


def session_of(job_id: str, work: Work) -> str:
    """The session a job works for: ``session_of("session:corp", Work("session corp")) == "corp"``."""
    return work.role[0] if work.role is not None else job_id[len("session:"):]


def _token_secrets(token: Token) -> list[str | None]:
    reg = token.registration
    return [token.access_token, token.refresh_token, reg.client_secret if reg else None]


class JobBodies:
    """What the jobs do; ``Daemon`` (``ssocred.daemon.jobs``) schedules them: ``Daemon(Options()).start()``."""

    opts: Options
    store: Store
    _lock: threading.RLock
    _jobs: dict[str, Work]
    _reporter: notify.Reporter
    _draw: random.Random

    def _backoff(self, work: Work, line: str) -> float:
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
        done = tokens.stats.of(name)[0]
        try:
            new = tokens.refresh(self.store, name, seen=token, force=True)
        except LoginRequired as exc:
            self._needs_login(name, exc.line())
            return None
        logs.redact_all(_token_secrets(new))
        if new.access_token == token.access_token:  # the refresh failed, but the token is still usable
            return self._backoff(work, f"the token could not be refreshed yet (it stays valid until "
                                       f"{iso_z(token.expires_at)})")
        count, commit_ms = tokens.stats.of(name)
        ours = count > done
        if tokens.unsaved(self.store, name) is not None:
            return self._backoff(work, "token refreshed, but the OS keyring refused it; it is kept in memory "
                                       "and answers requests while the keyring is retried")
        work.failures, work.last_error, work.last_done = 0, None, new.issued_at
        at = schedule.session_step(new, time.time(), self.opts.warn_before).at
        with self._lock:
            work.seen = self.store.index().sessions.get(name)
        commit = f" (stored {commit_ms:.0f} ms after the answer)" if ours and commit_ms is not None else ""
        log.info("session %s: token refreshed%s, expires %s, next refresh %s%s", name,
                 "" if ours or new.issued_at >= began else " by another process", iso_z(new.expires_at),
                 iso(at), commit)
        return at

    def _role_job(self, key: Role) -> float | None:
        work = self._jobs.get(role_id(key))
        session = self._jobs.get(f"session:{key[0]}")
        entry = self.store.index().find_creds(*key)
        if work is None or entry is None or session is None or session.blocked or work.blocked:
            return None
        due = schedule.prefetch_at(entry.expiration, entry.updated_at)
        if due > time.time():
            return due  # someone else fetched them meanwhile
        from ssocred.usecases import chain

        try:
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
