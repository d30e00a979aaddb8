"""Autostart: when no daemon answers, start one for this user in the background, unless that is unwelcome.

Never when a service manager owns the daemon (``ssocred service install``: its socket starts it),
never with ``SSOCRED_AUTOSTART=0`` or ``ssocred_autostart = false`` in the ``[default]`` section of
``~/.aws/config``, and by default not in CI, without a private runtime dir, or in a container without a
keyring (``adapters.autostart.off_by_default``; ``SSOCRED_AUTOSTART=1`` overrides that default).
Never without a usable OS keyring either (the memory store's daemon is started by hand, on purpose).
A caller waits for a starting daemon at most ``WAIT`` seconds, then answers by itself as it would have
without a daemon. A daemon that died before it answered is not started again for ``RETRY_AFTER``.
Example: ``start(wait=WAIT)`` is True when a daemon now listens on the socket.
"""

from __future__ import annotations

import os
import time

#: Longest wait for a starting daemon: a cold ``ssocred process`` without one (a boto3 import and a
#: portal call) takes about as long on a busy laptop, and a burst of them reading the keyring far longer.
WAIT = 2.0
#: Longest wait for a command that needs the daemon itself (``ssocred container``): a start on a slow machine.
START_LIMIT = 30.0
#: A daemon that died before it was ready (a broken setup, its log says why) is retried this much later.
RETRY_AFTER = 60.0
#: How long an autostarted daemon stays without requests, unless ``$SSOCRED_AUTOSTART_IDLE`` says otherwise.
IDLE_EXIT = "8h"
CONFIG_KEY = "ssocred_autostart"


def decision() -> tuple[bool, str]:
    """Whether a caller here may start a daemon, and why: ``(False, "CI is set; ...")``."""
    if os.name != "posix":
        return False, "not on this platform (Unix sockets and file locks are needed)"
    from ssocred import socket_protocol
    from ssocred.adapters import autostart

    if socket_protocol.forwarded_socket() is not None:
        # A daemon here would answer before the forwarded one, from a store this host does not have.
        return False, "a daemon is forwarded to this host (ssocred forward)"
    chosen = autostart.setting()
    if chosen is False:
        return False, f"{autostart.VARIABLE}=0"
    why = autostart.off_by_default() if chosen is None else None  # the cheap checks first: this runs per call
    if why is not None:
        return False, f"off by default here: {why} ({autostart.VARIABLE}=1 turns it on)"
    from ssocred.adapters.service_files import installed

    if installed():
        return False, "a service manager starts the daemon (ssocred service install)"
    return True, "on"


def _config_refuses() -> bool:
    """``ssocred_autostart = false`` in ``[default]``; an unreadable config refuses nothing (the caller says why)."""
    from ssocred.adapters import config_file
    from ssocred.errors import SsocredError

    try:
        value = config_file.load().profiles.get("default")
    except SsocredError:
        return False
    text = value.values.get(CONFIG_KEY, "") if value is not None else ""
    return text.strip().lower() in ("false", "0", "no", "off")


def _keyring_usable() -> bool:
    """Whether a daemon started now could keep secrets in an OS keyring.

    Without one it would answer every request with that error, and it must never stand in for a
    memory-store daemon that stopped: what that one held needs it started again, and a login.
    """
    from ssocred.adapters.keyring_backend import usable_backend, use_remembered_backend

    try:
        use_remembered_backend()
        usable_backend()
    except Exception:  # no keyring (StoreError), or a keyring library that fails to load: start nothing
        return False
    return True


def start(*, wait: float = WAIT) -> bool:
    """Make sure a daemon listens, starting one when allowed; whether one listens (after at most ``wait`` s).

    Example: ``start()`` in ``ssocred process`` after no daemon answered; then ask it again.
    """
    from ssocred import socket_protocol
    from ssocred.errors import SsocredError

    allowed, _ = decision()
    path = socket_protocol.trusted_socket() if allowed else None
    if path is None:
        return False
    from ssocred.adapters import autostart

    deadline = time.monotonic() + wait
    try:
        fd = autostart.try_lock()
    except (OSError, SsocredError):
        return False  # no runtime dir to start from: the caller's own path says what is wrong
    if fd is None:  # another caller is starting one
        return autostart.wait_listening(path, deadline)
    try:
        if autostart.listening(path):
            return True
        last = autostart.last_start(fd)
        if last is not None and last[0] == "spawned" and time.time() - last[1] < RETRY_AFTER:
            return False
        if _config_refuses() or not _keyring_usable():
            return False
        autostart.spawn(fd)
    except (OSError, SsocredError):
        return False
    finally:
        os.close(fd)
    return wait > 0 and autostart.wait_listening(path, deadline)


def start_in_background() -> None:
    """Start a daemon when none listens and autostart is allowed, without waiting for it.

    Example: ``start_in_background()`` before ``ssocred env`` reads the keyring: later calls find the daemon.
    """
    if os.name != "posix":
        return
    from ssocred.adapters.autostart import listening, setting

    if setting() is False:
        return
    from ssocred import socket_protocol

    path = socket_protocol.trusted_socket()
    if path is not None and not listening(path):
        start(wait=0)


#: How long ``make_way_for_service`` waits for an autostarted daemon to finish its refresh in flight and exit.
STOP_LIMIT = 30.0


def make_way_for_service(*, dry_run: bool = False, wait: float = STOP_LIMIT) -> int | None:
    """Before ``ssocred service install``: stop an autostarted daemon (the service's would refuse to run
    beside it); the pid it had, or None when none ran (a daemon the service manager started is its own).

    A daemon started by hand is left running: ServiceError naming its pid. ``dry_run`` stops nothing.
    Example: ``make_way_for_service()`` is 4242 after stopping the daemon that ``ssocred process`` started.
    """
    from ssocred.adapters import autostart, notify
    from ssocred.errors import ServiceError

    status = notify.read_status()
    if status is None:
        return None
    pid, who = status.get("pid"), status.get("started_by")
    if not isinstance(pid, int) or who in ("systemd", "launchd"):
        return None
    if who != "autostart":
        raise ServiceError(f"an ssocred daemon started by hand runs (pid {pid}); the service's daemon "
                           "cannot run beside it", fix=f"stop it (kill {pid}), then run this again")
    if not dry_run and not autostart.stop(pid, time.monotonic() + wait):
        raise ServiceError(f"the autostarted daemon (pid {pid}) did not stop within {wait:g} s",
                           fix=f"stop it (kill {pid}), then run this again")
    return pid
