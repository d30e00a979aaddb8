"""``ssocred daemon``: keeps SSO tokens fresh, pre-fetches recently used role credentials, serves the socket.

It runs in the foreground under a service manager (systemd ``Type=notify`` with a watchdog, or
launchd); the work itself is in ``ssocred.daemon.jobs``.
Example: ``ssocred daemon --log-dir`` or ``main(["--no-socket", "--log-file", "/tmp/daemon.log"])``
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ssocred.adapters import logs, network_client, notify
from ssocred.adapters.autostart import IDLE_VARIABLE
from ssocred.adapters.notify import read_status
from ssocred.cliargs import Parser
from ssocred.daemon.container import DEFAULT_LISTEN, parse_listen
from ssocred.daemon.jobs import Daemon, Options, malloc_call
from ssocred.errors import EXIT_CONFIG, SsocredError
from ssocred.model import schedule
from ssocred.socket_protocol import STORE_KEYRING, STORE_MEMORY
from ssocred.usecases.autostart import IDLE_EXIT

__all__ = ["Daemon", "Options", "main", "read_status"]

log = logging.getLogger("ssocred.daemon")

def build_parser() -> argparse.ArgumentParser:
    """The ``ssocred daemon`` options: ``build_parser().parse_args(["--no-socket"])``."""
    p = Parser(
        prog="ssocred daemon",
        description="Keep SSO tokens fresh, pre-fetch recently used role credentials and answer "
        "`ssocred process` over a Unix socket. Runs in the foreground; a service manager supervises it.",
    )
    d = Options()
    where = p.add_mutually_exclusive_group()
    where.add_argument("--log-file", type=Path, metavar="PATH", help="log to a rotating file (default: stderr)")
    where.add_argument("--log-dir", nargs="?", const="", metavar="DIR",
                       help="log to DIR/daemon.log (DIR defaults to the platform log dir)")
    p.add_argument("--prefetch-hours", type=float, default=d.prefetch_hours, metavar="H",
                   help="pre-fetch role credentials used within the last H hours (default 8; 0: never)")
    p.add_argument("--warn-before", type=schedule.duration, default=d.warn_before, metavar="DURATION",
                   help="warn when a session ends this soon and cannot be refreshed (default 1h)")
    p.add_argument("--scan-interval", type=schedule.duration, default=d.scan_interval, metavar="DURATION",
                   help="look for logins, logouts and newly used roles this often (default 30s)")
    p.add_argument("--retry-min", type=schedule.duration, default=d.retry_min, metavar="DURATION",
                   help="first retry after a network or keyring failure (default 30s, then doubling)")
    p.add_argument("--retry-max", type=schedule.duration, default=d.retry_max, metavar="DURATION",
                   help="longest retry delay (default 10m)")
    p.add_argument("--sync-interval", type=schedule.duration, default=d.sync_interval, metavar="DURATION",
                   help="re-run populate for sessions with ssocred_sync_profiles = true this often, and after each "
                   "login (default 1h)")
    p.add_argument("--no-socket", action="store_true", help="do not answer `ssocred process` over the socket")
    p.add_argument("--store", choices=(STORE_KEYRING, STORE_MEMORY), default=STORE_KEYRING,
                   help="where tokens and role credentials are kept: the OS keyring (default), or only this "
                   "daemon's memory, for machines without a keyring (SSH hosts, WSL, containers, CI); every "
                   "ssocred command of this user then uses it over the socket, and a restart means a new login")
    p.add_argument("--container-listen", type=_listen, default=DEFAULT_LISTEN, metavar="HOST:PORT",
                   help="where the container credentials endpoint listens once `ssocred container` asks for it "
                   "(default 127.0.0.1:0, a free port; SDKs take plain HTTP only from loopback, "
                   "169.254.170.2 or 169.254.170.23)")
    p.add_argument("--autostarted", action="store_true",
                   help="started by a caller that found no daemon (see `ssocred status`); implies --idle-exit 8h")
    p.add_argument("--idle-exit", type=schedule.duration, metavar="DURATION",
                   help="exit after this long without a request, a container grant or a credentials-file export")
    p.add_argument("--verbose", action="store_true", help="log debug messages too")
    return p


def _listen(text: str) -> tuple[str, int]:
    try:
        return parse_listen(text)
    except SsocredError as exc:
        raise argparse.ArgumentTypeError(exc.line()) from None


def main(argv: list[str]) -> int:
    """Run the daemon until SIGTERM or SIGINT; returns the exit code (5: another daemon runs).

    Example: ``main(["--log-file", "/tmp/daemon.log", "--prefetch-hours", "4"])``
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.scan_interval < 1 or args.retry_min <= 0 or args.retry_max < args.retry_min or args.sync_interval < 1:
        parser.error("--scan-interval and --sync-interval must be at least 1s, and 0 < --retry-min <= --retry-max")
    if args.store == STORE_MEMORY and args.no_socket:
        parser.error("--store memory needs the socket: it is the only way to the secrets it keeps")
    os.umask(0o077)  # the log file, its rotations and the status file: this user's only
    malloc_call("mallopt", -8, 2)  # M_ARENA_MAX: a heap per thread would keep each worker's garbage
    log_file: Path | None = args.log_file
    if args.log_dir is not None:
        log_file = Path(args.log_dir) / logs.LOG_FILE_NAME if args.log_dir else logs.default_log_file()
    try:
        logs.setup(log_file, level=logging.DEBUG if args.verbose else logging.INFO,
                   private_parent=args.log_dir is not None)
        lock = notify.acquire_pid_lock()
    except (OSError, SsocredError) as exc:
        return _fail(exc, log_file)
    # AWS calls in a worker process that exits when idle: botocore would stay in this one for good.
    network_client.delegate(protect=args.store == STORE_MEMORY)
    try:
        _keep_store(args.store)  # under the pid lock: no other daemon holds the memory store's files
    except (OSError, SsocredError) as exc:
        notify.release_pid_lock(lock)
        return _fail(exc, log_file)
    try:
        opts = Options(args.prefetch_hours, args.warn_before, args.scan_interval, args.retry_min, args.retry_max,
                       sync_interval=args.sync_interval)
        idle = args.idle_exit if args.idle_exit is not None else _autostart_idle() if args.autostarted else None
        code, clean = _serve(opts, socket=not args.no_socket, log_file=log_file, container=args.container_listen,
                             started_by="autostart" if args.autostarted else _manager(), idle=idle,
                             store=args.store)
    finally:
        notify.release_pid_lock(lock)
    if not clean:
        # Worker threads still in a job would hold up the interpreter's exit: leave without them.
        logging.shutdown()
        os._exit(code)
    return code


def _fail(exc: BaseException, log_file: Path | None) -> int:
    """One line on stderr (and in the log file, when there is one); the exit code."""
    if isinstance(exc, SsocredError):
        line, code = exc.line(), exc.exit_code
    elif isinstance(exc, ImportError):
        line, code = (f"this installation lacks the socket server ({exc.name}); reinstall ssocred, "
                      "or run with --no-socket"), EXIT_CONFIG
    else:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        line, code = f"cannot open {getattr(exc, 'filename', None) or 'the log file'} ({reason})", EXIT_CONFIG
    sys.stderr.write(f"ssocred: {line}\n")
    if log_file is not None and logging.getLogger().handlers:
        log.error("%s", line)
    return code


def _keep_store(store: str) -> None:
    """Make this process keep the store: in the OS keyring, or protected in its own memory (started empty)."""
    from ssocred.adapters import memory_guard
    from ssocred.adapters.keyring_backend import use_store

    if store != STORE_MEMORY:
        use_store(store)
        return
    for note in memory_guard.protect():
        log.warning("%s", note)
    use_store(store)
    from ssocred.adapters.memory_keyring import start_empty
    from ssocred.adapters.store import Store

    store_of = Store()
    gone = start_empty(store_of.service, store_of.timeout)
    if gone:
        log.info("the memory store starts empty; the sessions an earlier memory-store daemon held need a new "
                 "login: %s", ", ".join(gone))
    log.info("keeping tokens and role credentials in this daemon's memory only (keyring service %s)",
             store_of.service)


def _warn_without_keyring() -> None:
    """One warning when this keyring daemon has no keyring: every request would fail, and nothing else says why.

    Checked once the socket answers: callers waiting for a starting daemon need not wait for keyring's detection.
    """
    from ssocred.adapters.keyring_backend import usable_backend

    try:
        usable_backend()
    except SsocredError as exc:
        log.warning("%s: every request will fail until one is usable; to keep the secrets in this daemon's memory "
                    "instead, run: ssocred daemon --store memory", exc.message)
    except Exception as exc:  # a keyring library that fails to load: the first request reports it
        log.warning("the OS keyring could not be checked (%s)", type(exc).__name__)


def _autostart_idle() -> float:
    """``$SSOCRED_AUTOSTART_IDLE`` (a duration), else 8 hours: after that long unused, nothing is pre-fetched anyway."""
    text = os.environ.get(IDLE_VARIABLE, "")
    try:
        return schedule.duration(text or IDLE_EXIT)
    except ValueError:
        log.warning("%s=%s is not a duration (like 30m or 8h); using %s", IDLE_VARIABLE, text, IDLE_EXIT)
        return schedule.duration(IDLE_EXIT)


def _manager() -> str:
    """Who started this daemon, for ``status``: ``systemd``, ``launchd`` or ``by hand``."""
    if os.environ.get("INVOCATION_ID"):
        return "systemd"
    if os.environ.get("XPC_SERVICE_NAME", "").startswith("com.ssocred"):
        return "launchd"
    return "by hand"


def _serve(opts: Options, *, socket: bool, log_file: Path | None, container: tuple[str, int] = DEFAULT_LISTEN,
           started_by: str = "by hand", idle: float | None = None, store: str = STORE_KEYRING) -> tuple[int, bool]:
    """Run until a signal (or ``idle`` seconds without work): (exit code, whether every job finished)."""
    from ssocred.adapters import autostart
    from ssocred.usecases import tokens

    tokens.serve_refreshes()  # clients ask this process to refresh; it never asks another
    start_lock = autostart.inherited_lock()
    stop = threading.Event()
    # SIGHUP too (a closed terminal): its default would end the daemon in the middle of a refresh.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    server = None
    if socket:  # first: callers waiting for an autostarted daemon are answered while the scheduler starts
        try:
            from ssocred.daemon import server as sockserver

            server = sockserver.start(container=container, store=store)
        except (ImportError, SsocredError) as exc:
            return _fail(exc, log_file), True
    daemon = _Reported(opts, started_by, idle, store)
    daemon.start()
    if start_lock is not None:
        autostart.ready(start_lock)
    notify.sd_notify("READY=1")
    log.info("started (pid %d, %s, %s, pre-fetch of roles used within %g h%s)", os.getpid(), started_by,
             f"socket {server.path}" if server else "no socket", opts.prefetch_hours,
             f", exits after {idle:g} s without requests" if idle else "")
    if store != STORE_MEMORY:  # on a thread of its own: a keyring hung on D-Bus must not hold up a stop
        threading.Thread(target=_warn_without_keyring, name="ssocred-keyring-check", daemon=True).start()
    while not stop.wait(1.0):
        if idle and server is not None and _idle(server, idle):
            log.info("no request for %g s, no container grant and no credentials-file export: exiting", idle)
            break
    log.info("stopping")
    notify.sd_notify("STOPPING=1")
    if server is not None:
        server.close()
    clean = daemon.stop()
    network_client.stop()
    log.info("stopped")
    return 0, clean


class _Reported(Daemon):
    """The daemon whose status also says who started it and when it leaves if unused."""

    def __init__(self, opts: Options, started_by: str, idle: float | None, store: str = STORE_KEYRING) -> None:
        super().__init__(opts)
        self._started_by, self._idle_exit, self._store = started_by, idle, store

    def status(self) -> dict[str, Any]:
        return {**super().status(), "started_by": self._started_by, "idle_exit_seconds": self._idle_exit,
                "store": self._store}


def _idle(server: Any, idle: float) -> bool:
    """No request for ``idle`` seconds, no container grant and no credentials-file export."""
    if time.monotonic() - server.responder.last_request < idle:
        return False
    if server.container is not None and len(server.container.grants):
        return False
    from ssocred.usecases import exports

    try:
        return not exports.roles()
    except SsocredError:
        return False


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
