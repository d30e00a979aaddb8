"""A usable SSO access token for a session; a refresh is a singleflight no signal can split.

A refresh spends the session's refresh token: the service rotates it the moment it receives the
request, and its successor exists only in the answer until it is stored. Therefore:

* while a daemon runs, a client asks it to refresh (over its socket) and reads the result from the
  store: a client killed at any moment cannot lose the session;
* otherwise, under the session lock, the caller reads the store again (another process may have
  refreshed meanwhile), marks the refresh as in flight in the index, and with SIGINT, SIGTERM and
  SIGHUP held sends the request and stores the answer, retrying a failed keyring write for up to
  ``COMMIT_BUDGET`` seconds. A token that still cannot be stored answers this process anyway
  (``unsaved``); the index keeps its mark, so the next caller can tell an interrupted refresh from
  a revoked one.

Example: ``fresh_token(Store(), "corp").access_token``
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn

from ssocred.adapters.locks import Lock, held, held_fd
from ssocred.errors import LoginRequired, ServiceError, SsocredError, StoreError, from_reply
from ssocred.model.sso import Token, fingerprint, login_command, needs_inline_refresh, token_usable

if TYPE_CHECKING:
    from ssocred.adapters.store import Store

Clock = Callable[[], float]

#: How long a refresh keeps retrying a failed keyring write of the token it received.
COMMIT_BUDGET = 10.0
_COMMIT_FIRST_DELAY = 0.2

#: Tokens this process received but could not store, by (keyring service, session).
_unsaved: dict[tuple[str, str], Token] = {}
_unsaved_lock = threading.Lock()
#: True in the daemon: it refreshes itself rather than asking a daemon.
_serving = False


@dataclass
class RefreshStats:
    """What this process's refreshes did: ``stats.refreshed``, ``stats.last_commit_ms``, ``stats.of("corp")``."""

    refreshed: int = 0
    #: Milliseconds from the service's answer to the new token being in the keyring.
    last_commit_ms: float | None = None
    #: Per session: refreshes done here, and the commit time of the last one (refreshes run in parallel).
    sessions: dict[str, tuple[int, float | None]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def of(self, session: str) -> tuple[int, float | None]:
        """Refreshes of ``session`` done here and its last commit time: ``stats.of("corp") == (2, 12.5)``."""
        with self.lock:
            return self.sessions.get(session, (0, None))

    def count(self, session: str) -> None:
        """Note a refresh of ``session`` that got a new token: ``stats.count("corp")``."""
        with self.lock:
            self.refreshed += 1
            self.sessions[session] = (self.sessions.get(session, (0, None))[0] + 1, None)

    def committed(self, session: str, ms: float) -> None:
        """Note how long storing ``session``'s new token took: ``stats.committed("corp", 12.5)``."""
        with self.lock:
            self.last_commit_ms = ms
            self.sessions[session] = (self.sessions.get(session, (0, None))[0], ms)


stats = RefreshStats()


def serve_refreshes() -> None:
    """Make this process the one that refreshes (the daemon): it never asks a daemon to do it."""
    global _serving
    _serving = True


def login_required(session: str, what: str) -> LoginRequired:
    """The standard "log in again" error: ``login_required("corp", "has expired")``."""
    return LoginRequired(f"SSO session '{session}' {what}", fix=f"run: {login_command(session)}")


def stored_token(store: Store, session: str) -> Token:
    """The token of ``session``: one this process could not store yet, else the store's; LoginRequired if none."""
    pending = unsaved(store, session)
    if pending is not None:
        return pending
    token = store.load_session(session)
    if token is None:
        raise login_required(session, "is not logged in")
    return token


def unsaved(store: Store, session: str) -> Token | None:
    """The refreshed token of ``session`` this process holds because the keyring refused it, or None."""
    with _unsaved_lock:
        return _unsaved.get((store.service, session))


def forget_unsaved(store: Store, session: str) -> None:
    """Drop a held token (the session was logged out or in again): ``forget_unsaved(store, "corp")``."""
    with _unsaved_lock:
        _unsaved.pop((store.service, session), None)


def save_unsaved(store: Store, session: str) -> bool:
    """Try again to store the token held for ``session``; True when nothing is held any more.

    Example: the daemon calls ``save_unsaved(store, "corp")`` until the keyring takes it.
    """
    pending = unsaved(store, session)
    if pending is None:
        return True
    with held(store.session_lock(session), f"SSO session '{session}'"):
        try:
            stored = store.load_session(session)
        except StoreError:
            return False  # a keyring that cannot read will not write either
        if stored is None or stored.issued_at > pending.issued_at:
            forget_unsaved(store, session)  # logged out, or logged in again since: this one is obsolete
            return True
        return _commit(store, session, pending, deadline=time.monotonic())


def unsaved_warnings() -> list[str]:
    """One line per session whose refreshed token only this process holds (for the front ends).

    Example: ``["the refreshed token of SSO session 'corp' could not be stored (...); ..."]``
    """
    with _unsaved_lock:
        names = sorted({session for _, session in _unsaved})
    return [
        f"the refreshed token of SSO session '{name}' could not be stored in the OS keyring; it answered "
        f"this call, but the next ones will need a new login unless the keyring recovers and a daemon "
        f"holds it; check the keyring (ssocred doctor), then run: {login_command(name)}"
        for name in names
    ]


def fresh_token(store: Store, session: str, *, force: bool = False, clock: Clock = time.time) -> Token:
    """A token that can be sent now, refreshing it first when it is expired or nearly so.

    Example: ``fresh_token(Store(), "corp", clock=lambda: 1.7e9)``; ``force`` refreshes a token
    the portal rejected although it looks valid.
    """
    token = stored_token(store, session)
    if not force and not needs_inline_refresh(token, clock()):
        return token
    return refresh(store, session, seen=token, force=force, clock=clock)


def refresh(store: Store, session: str, *, seen: Token | None = None, force: bool = False,
            clock: Clock = time.time) -> Token:
    """Refresh ``session`` unless another process already did since ``seen`` was read.

    A running daemon does it (so that no killed client can lose the session); without one it is
    done here, under the session lock. ``force`` refreshes even a token outside the inline window
    (the daemon's schedule, a token the portal rejected), but never one replaced after ``seen``.
    Example: ``refresh(store, "corp", seen=token, force=True)``
    """
    seen_print = fingerprint(seen) if seen is not None else None
    if _serving:
        return refresh_here(store, session, seen=seen_print, force=force, clock=clock)
    answer = _ask_daemon(store, session, seen_print, force)
    if answer is not None:
        return answer
    with held(store.session_lock(session), f"SSO session '{session}'") as lock:
        token = stored_token(store, session)
        now = clock()
        replaced = seen_print is not None and fingerprint(token) != seen_print
        if replaced or not (force or needs_inline_refresh(token, now)):
            return token
        detached = _refresh_detached(store, session, lock, fingerprint(token))
        if detached is not None:
            return detached
        return _refresh_locked(store, session, token, now, clock)


def refresh_here(store: Store, session: str, *, seen: str | None, force: bool, clock: Clock = time.time) -> Token:
    """The refresh itself, in this process: what the daemon runs for its clients and its schedule.

    ``seen`` is the ``fingerprint`` of the token the caller found stale (None: whatever is stored).
    Example: ``refresh_here(store, "corp", seen=fingerprint(token), force=False)``
    """
    with held(store.session_lock(session), f"SSO session '{session}'"):
        token = stored_token(store, session)
        now = clock()
        replaced = seen is not None and fingerprint(token) != seen
        if replaced or not (force or needs_inline_refresh(token, now)):
            return token
        return _refresh_locked(store, session, token, now, clock)


def _ask_daemon(store: Store, session: str, seen: str | None, force: bool) -> Token | None:
    """The token after the daemon refreshed it; None when no daemon takes the request."""
    from ssocred import socket_protocol

    request = {"v": socket_protocol.PROTOCOL_VERSION, "op": "refresh", "session": session, "seen": seen or "",
               "force": force, "service": store.service, "backend": os.environ.get("PYTHON_KEYRING_BACKEND", "")}
    try:
        line = (json.dumps(request) + "\n").encode("utf-8")
    except UnicodeEncodeError:
        return None
    reply = socket_protocol.exchange(line)
    if reply is None:
        return None
    code, body = reply
    try:
        answer = json.loads(body)
    except ValueError:
        return None  # an answer this client does not understand: do the work itself
    if not isinstance(answer, dict):
        return None
    if code != 0:
        _raise_reply({**answer, "code": code}, f"the daemon could not refresh SSO session '{session}'")
    held_print = answer.get("fingerprint")
    if not isinstance(held_print, str):
        return None
    token = stored_token(store, session)
    if fingerprint(token) != held_print:
        raise StoreError(
            f"the daemon refreshed SSO session '{session}' but could not store the new token in the OS keyring",
            fix="it keeps the token and retries; check the keyring (ssocred doctor), then try again",
        )
    return token


def _refresh_detached(store: Store, session: str, lock: Lock, seen: str) -> Token | None:
    """The refresh done by ``ssocred.process.refresher``, which nothing that ends this process can stop.

    The lock this process holds is handed over with its descriptor. None when that cannot be done
    here (no POSIX locks, no way to start a process): the caller then refreshes in-process.
    """
    import subprocess
    import sys

    from ssocred.model.sso import token_from_dict

    fd = held_fd(lock)
    if fd is None:
        return None
    argv = [sys.executable, "-m", "ssocred.process.refresher", "--session", session, "--service", store.service,
            "--lock-fd", str(fd)]
    try:
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                 pass_fds=(fd,), start_new_session=True)
    except OSError:
        return None
    out, _ = child.communicate()  # the refresher bounds its own waits and network time
    try:
        answer = json.loads(out)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        # Ended by a signal sent to it, which it held until the token was stored: look there.
        token = stored_token(store, session)
        if fingerprint(token) != seen and token_usable(token, time.time()):
            return token
        raise ServiceError(f"the refresh of SSO session '{session}' ended without an answer "
                           f"(exit status {child.returncode})", fix="try again; ssocred doctor shows the state")
    if "unsaved" in answer:
        token = token_from_dict(answer["unsaved"])
        with _unsaved_lock:
            _unsaved[(store.service, session)] = token
        return token
    if "fingerprint" in answer:
        token = stored_token(store, session)
        if fingerprint(token) == answer["fingerprint"]:
            return token
        raise ServiceError(f"the refreshed token of SSO session '{session}' is not in the store",
                           fix="try again; ssocred doctor shows the state")
    return _raise_reply(answer, f"the refresh of SSO session '{session}' failed")


def _raise_reply(answer: dict[str, object], default: str) -> NoReturn:
    """Raise the error another ssocred process reported as ``{"code", "message", "fix"}``."""
    code, message, fix = answer.get("code"), answer.get("message"), answer.get("fix")
    raise from_reply(code if isinstance(code, int) else 5, message if isinstance(message, str) else default,
                     fix if isinstance(fix, str) else None)


def refresh_locked(store: Store, session: str, token: Token, clock: Clock = time.time) -> Token:
    """Refresh ``token`` now; the caller holds the session lock (``ssocred.process.refresher`` does).

    Example: ``refresh_locked(store, "corp", stored_token(store, "corp"))``
    """
    return _refresh_locked(store, session, token, clock(), clock)


def _refresh_locked(store: Store, session: str, token: Token, now: float, clock: Clock) -> Token:
    from ssocred.adapters import signals
    from ssocred.adapters.oidc import OAuthError, Oidc, dead_grant

    if not token.refreshable(now):
        if token_usable(token, now):
            return token
        reason = "has expired and cannot be refreshed" + (
            " (its client registration has expired)" if token.refresh_token else ""
        )
        raise login_required(session, reason)
    assert token.registration is not None and token.refresh_token is not None
    interrupted = refresh_interrupted(store, session, token) is not None
    oidc = Oidc(token.region)  # built first: the held part must be as short as it can be
    with signals.held():
        with contextlib.suppress(StoreError):  # without the mark the refresh is as safe, only less explained
            store.mark_refresh(session, token, clock())
        try:
            grant = oidc.refresh(token.registration, token.refresh_token)
        except OAuthError as exc:
            if not interrupted:  # the service answered: nothing is in flight, and nothing was lost here
                with contextlib.suppress(StoreError):
                    store.end_refresh(session)
            if dead_grant(exc.code):  # recorded for status; the next stored token clears it
                with contextlib.suppress(StoreError):
                    store.mark_rejected(session, token, clock())
            if token_usable(token, now):
                return token
            if dead_grant(exc.code) and interrupted:
                raise LoginRequired(f"{interrupted_text(session)} and the service no longer accepts the old "
                                    "refresh token", fix=f"run: {login_command(session)}") from None
            if dead_grant(exc.code):
                raise login_required(session, "can no longer be refreshed (the refresh token was rejected)") from None
            raise ServiceError(
                f"refreshing SSO session '{session}' failed ({exc.code})", fix="try again in a minute"
            ) from None
        except ServiceError:
            if token_usable(token, now):
                return token
            raise
        answered = time.monotonic()
        issued = clock()
        new = Token(
            access_token=grant.access_token,
            expires_at=issued + grant.expires_in,
            issued_at=issued,
            start_url=token.start_url,
            region=token.region,
            refresh_token=grant.refresh_token or token.refresh_token,
            registration=token.registration,
        )
        stats.count(session)
        _commit(store, session, new, deadline=answered + COMMIT_BUDGET, answered=answered)
    from ssocred.adapters import awscli_cache

    with contextlib.suppress(SsocredError, OSError):  # the export follows at the next refresh
        awscli_cache.after_refresh(session, new)
    return new


def refresh_interrupted(store: Store, session: str, token: Token) -> float | None:
    """When a refresh of ``token`` began that never stored its result (the index's mark), or None.

    Example: ``refresh_interrupted(store, "corp", store.load_session("corp"))`` after a SIGKILL mid-refresh.
    """
    try:
        entry = store.index().sessions.get(session)
    except StoreError:
        return None
    started = entry.refresh_started_at if entry is not None else None
    return started if started is not None and started >= token.issued_at else None


def interrupted_text(session: str) -> str:
    """How an interrupted refresh is named: ``interrupted_text("corp")``."""
    return f"a refresh of SSO session '{session}' was interrupted (or its new token could not be stored)"


def _commit(store: Store, session: str, new: Token, *, deadline: float, answered: float | None = None) -> bool:
    """Store ``new``, retrying until ``deadline`` (monotonic); True once it is in the keyring.

    A token the keyring keeps refusing is held in memory (``unsaved``): it answers this process,
    and the daemon keeps trying to store it.
    """
    delay = _COMMIT_FIRST_DELAY
    while True:
        try:
            store.write_session(session, new)
            break
        except StoreError:
            if time.monotonic() + delay > deadline:
                with _unsaved_lock:
                    _unsaved[(store.service, session)] = new
                return False
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
    if answered is not None:
        stats.committed(session, (time.monotonic() - answered) * 1000)
    forget_unsaved(store, session)
    # The token is safe now; the index only describes it (and a stale mark is recognised as such).
    with contextlib.suppress(StoreError):
        store.index_session(session, new)
    return True
