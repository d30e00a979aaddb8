"""Resident memory and CPU of an idle ``ssocred daemon`` with 3 sessions and 20 pre-fetched roles.

Run: ``.venv/bin/python bench/daemon_idle.py [--seconds 60]``. It starts the emulator
(``--accounts 10 --roles 2``) and a private Secret Service (gnome-keyring on its own D-Bus) in a
throw-away HOME, logs in three SSO sessions, uses the 20 roles once and starts the daemon, whose
RSS is read once it is ready and has nothing due. Then it makes every token and credential due,
so that the daemon does real work (3 refreshes, 20 fetches), which its network worker process makes (botocore
is loaded there); it waits for that worker to exit once idle (``SSOCRED_NETWORK_WORKER_IDLE``,
default 30 s). Then it measures the daemon, idle, over the window: RSS (VmRSS and peak
VmHWM from /proc/PID/status) and CPU (utime + stime from /proc/PID/stat). Targets: RSS <= 45 MB,
CPU <= 1 %. The last line says whether both were met.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import isolated_env, private_keyring  # noqa: E402
from tests.support.cli import REGION, START_URL, ssocred_argv  # noqa: E402
from tests.support.emulator import sso_client, start_emulator  # noqa: E402

SESSIONS = ("alpha", "beta", "gamma")
RSS_TARGET_MB = 45.0
CPU_TARGET_PCT = 1.0


def _proc_status(pid: int, field: str) -> float:
    """A ``kB`` field of /proc/PID/status in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _alive_rss(pid: int) -> float | None:
    """VmRSS of ``pid`` in MB, or None once it has exited."""
    try:
        return _proc_status(pid, "VmRSS")
    except (OSError, KeyError):
        return None


def _setup(tmp: Path, emu_env: dict[str, str]) -> dict[str, str]:
    env = isolated_env(tmp, emu_env, SSOCRED_KEYRING_SERVICE=f"ssocred-bench-{uuid.uuid4().hex[:8]}",
                       PYTHONPATH=str(ROOT))
    (tmp / "config").write_text("".join(
        f"[sso-session {name}]\nsso_start_url = {START_URL}\nsso_region = {REGION}\n"
        "sso_registration_scopes = sso:account:access\n" for name in SESSIONS))
    for name in SESSIONS:
        subprocess.run([*ssocred_argv(), "login", "--sso-session", name, "--use-device-code"], env=env,
                       check=True, capture_output=True)
    return env


def _use_roles(env: dict[str, str], url: str) -> list[tuple[str, str, str]]:
    """Call ``ssocred process`` once for each of the 20 roles, spread over the sessions."""
    from ssocred.adapters.store import Store

    token = Store().load_session(SESSIONS[0])
    assert token is not None
    portal = sso_client(url)
    roles = []
    for account in portal.list_accounts(accessToken=token.access_token, maxResults=100)["accountList"]:
        listed = portal.list_account_roles(accessToken=token.access_token, accountId=account["accountId"])
        roles += [(account["accountId"], r["roleName"]) for r in listed["roleList"]]
    targets = [(SESSIONS[i % len(SESSIONS)], account, role) for i, (account, role) in enumerate(roles[:20])]
    for session, account, role in targets:
        subprocess.run([*ssocred_argv(), "process", "--sso-session", session, "--account-id", account,
                        "--role-name", role], env=env, check=True, capture_output=True)
    return targets


def _make_everything_due(targets: list[tuple[str, str, str]]) -> None:
    """Age the stored tokens and credentials so that the daemon refreshes and fetches all of them."""
    from ssocred.adapters.store import Store

    store, now = Store(), time.time()
    for name in SESSIONS:
        token = store.load_session(name)
        assert token is not None
        store.save_session(name, dataclasses.replace(token, issued_at=now - 3000, expires_at=now + 600))
    for session, account, role in targets:
        creds = store.load_creds(session, account, role)
        assert creds is not None
        # The index knows when they were saved, not issued: a short remaining life makes them due.
        store.save_creds(session, account, role,
                         dataclasses.replace(creds, issued_at=now - 3580, expiration=now + 20), requested=False)


def _wait_ready(sock: socket.socket, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    sock.settimeout(1.0)
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if b"READY=1" in sock.recv(4096):
                return
        except TimeoutError:
            pass
    raise SystemExit(f"the daemon did not become ready (exit {proc.poll()})")


def _wait_log(path: Path, pattern: str, count: int, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text() if path.exists() else ""
        if len(re.findall(pattern, text)) >= count:
            return
        time.sleep(0.5)
    tail = path.read_text()[-3000:] if path.exists() else ""
    raise SystemExit(f"fewer than {count} x {pattern!r} in {path}:\n{tail}")


def main() -> int:
    """Run the benchmark; prints the verdict last."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the idle window (60)")
    args = parser.parse_args()
    service = private_keyring()
    emu = start_emulator("--accounts", "10", "--roles", "2")
    proc = None
    try:
        with tempfile.TemporaryDirectory(prefix="ssocred-bench-") as d:
            tmp = Path(d)
            env = _setup(tmp, emu.env())
            os.environ.update(env)
            targets = _use_roles(env, emu.url)
            address = f"ssocred-bench-{uuid.uuid4().hex}"
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.bind("\0" + address)
                log_file = tmp / "daemon.log"
                proc = subprocess.Popen([sys.executable, "-m", "ssocred.daemon.main", "--log-file", str(log_file)],
                                        env={**env, "NOTIFY_SOCKET": "@" + address},
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
                _wait_ready(sock, proc)
            _wait_log(log_file, r"pre-fetching it", len(targets))  # the first scan is done: nothing is due
            time.sleep(2)
            ready_rss = _proc_status(proc.pid, "VmRSS")
            _make_everything_due(targets)  # the next scans see it and start the work
            _wait_log(log_file, r"token refreshed", len(SESSIONS))
            _wait_log(log_file, r"pre-fetched ASIA", len(targets))
            workers = re.findall(r"network worker started \(pid (\d+)\)", log_file.read_text())
            worker_rss = _alive_rss(int(workers[-1])) if workers else None
            # The AWS calls ran in the network worker; it exits once idle, and the daemon is measured without it.
            _wait_log(log_file, r"network worker \(pid \d+\) exited", len(workers))
            time.sleep(2)  # let the last status write and log line settle
            cpu0, t0 = _cpu_seconds(proc.pid), time.monotonic()
            time.sleep(args.seconds)
            cpu1, t1 = _cpu_seconds(proc.pid), time.monotonic()
            rss, peak = _proc_status(proc.pid, "VmRSS"), _proc_status(proc.pid, "VmHWM")
            text = log_file.read_text()
            alive_workers = len(re.findall(r"network worker started", text)) - len(
                re.findall(r"network worker \(pid \d+\) exited", text))
            threads = int(_proc_status(proc.pid, "Threads") * 1024)
            cpu_pct = (cpu1 - cpu0) / (t1 - t0) * 100
            log_lines = len(log_file.read_text().splitlines())
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
            print(f"machine: {os.cpu_count()} cpus, {sys.platform}, Python {sys.version.split()[0]}; "
                  f"keyring: Secret Service (gnome-keyring)")
            print(f"daemon: {len(SESSIONS)} sessions, {len(targets)} pre-fetched roles, {threads} threads, "
                  f"{log_lines} log lines, exit {code} on SIGTERM")
            print(f"  idle window        {t1 - t0:6.1f} s")
            print(f"  RSS when ready     {ready_rss:6.1f} MB   (before any refresh or fetch)")
            print(f"  RSS at the end     {rss:6.1f} MB   (peak {peak:.1f} MB; target <= {RSS_TARGET_MB:g} MB; "
                  f"{rss - ready_rss:+.1f} MB for the work)")
            print(f"  CPU over the window {cpu_pct:5.2f} %   ({cpu1 - cpu0:.2f} s; target <= {CPU_TARGET_PCT:g} %)")
            shown = f"{worker_rss:.1f} MB" if worker_rss is not None else "gone before it was read"
            print(f"  network worker     {len(workers)} started for the work (RSS {shown} after it), "
                  f"{alive_workers} still running at the end")
            ok = rss <= RSS_TARGET_MB and cpu_pct <= CPU_TARGET_PCT
            print(f"daemon idle: RSS {rss:.1f} MB, CPU {cpu_pct:.2f} %: {'within' if ok else 'OUTSIDE'} the targets")
            return 0 if ok else 1
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        emu.stop()
        service.stop()


if __name__ == "__main__":
    raise SystemExit(main())
