"""Sessions lost when ``ssocred process`` is signalled or killed while it refreshes an SSO token.

Run: ``.venv/bin/python bench/refresh_chaos.py [--ssocred CMD] [--rounds N] [--random-kills N]``.
It starts the emulator (which rotates refresh tokens and rejects reuse) with a slow token endpoint
and a private Secret Service in a throw-away HOME, then, with no daemon running:

* per signal (SIGINT, SIGTERM, SIGHUP, SIGKILL): ``--rounds`` sessions with expired tokens, one
  ``ssocred process`` each, all signalled while their refresh request is in flight (the emulator's
  ``/_stats`` shows it), then one more call per session: a session is lost when that call fails;
* ``--random-kills`` times: one session's token expired, ``ssocred process`` SIGKILLed at a random
  moment 0-300 ms after it starts, then the same check;
* with ``--daemon``, the random kills again with a daemon running: sessions lost, refreshes the
  emulator saw against those the daemon made, and the daemon's commit window (from the service's
  answer to the stored token) of the refreshes it logged.

``--ssocred`` runs another installation's command (for a before/after comparison; its store must
read this checkout's format). It prints one line per case: ``<case>: <lost> of <n> sessions lost``.
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import isolated_env, keyring_and_emulator  # noqa: E402
from tests.support.cli import ACCOUNT, DIRECTORY, REGION, ROLE, START_URL, ssocred_argv  # noqa: E402
from tests.support.emulator import RunningEmulator, device_login  # noqa: E402

SLOW_MS = 2500


def _seed(emu: RunningEmulator, name: str, env: dict[str, str]) -> None:
    """A real device-flow login at the emulator, stored as session ``name`` with its token expired."""
    from ssocred.adapters.store import Store
    from ssocred.model.sso import GRANT_DEVICE, GRANT_REFRESH, Registration, Token

    reg, grant = device_login(emu.url)
    now = time.time()
    token = Token(grant["accessToken"], now - 5, now - 3605, START_URL, REGION, grant["refreshToken"],
                  Registration(reg["clientId"], reg["clientSecret"], float(reg["clientSecretExpiresAt"]),
                               ("sso:account:access",), (GRANT_DEVICE, GRANT_REFRESH)))
    Store(env["SSOCRED_KEYRING_SERVICE"]).save_session(name, token)


def _expire(name: str, env: dict[str, str]) -> bool:
    """Expire the stored token and drop the cached credentials; False when there is no session."""
    import dataclasses

    from ssocred.adapters.store import Store

    store = Store(env["SSOCRED_KEYRING_SERVICE"])
    token = store.load_session(name)
    if token is None:
        return False
    now = time.time()
    store.save_session(name, dataclasses.replace(token, expires_at=now - 5, issued_at=now - 3605))
    store.delete_creds(name, ACCOUNT, ROLE)
    return True


def _argv(cmd: list[str], name: str) -> list[str]:
    return [*cmd, "process", "--sso-session", name, "--account-id", ACCOUNT, "--role-name", ROLE]


def _settle(emu: RunningEmulator) -> None:
    """Wait until the emulator answers nothing (a detached refresh may still be finishing)."""
    deadline = time.monotonic() + 60
    while any(emu.stats()["in_flight_now"].values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)


def _alive(cmd: list[str], name: str, env: dict[str, str]) -> bool:
    """Whether the session still works; any failure other than "log in again" stops the run."""
    r = subprocess.run(_argv(cmd, name), env=env, capture_output=True, text=True, timeout=120, check=False)
    if r.returncode not in (0, 1):
        raise SystemExit(f"unexpected failure (exit {r.returncode}): {r.stderr.strip()}")
    return r.returncode == 0


def signal_round(emu: RunningEmulator, cmd: list[str], env: dict[str, str], sig: signal.Signals, n: int) -> int:
    """Sessions lost out of ``n`` when ``sig`` lands while each one's refresh is in flight."""
    names = [f"{sig.name.lower()}{i}" for i in range(n)]
    for name in names:
        _seed(emu, name, env)
    emu.control(latency_ms=SLOW_MS)
    procs = [subprocess.Popen(_argv(cmd, name), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True) for name in names]
    deadline = time.monotonic() + 60
    while emu.stats()["in_flight_now"].get("CreateToken", 0) < n:
        if time.monotonic() > deadline:
            raise SystemExit(f"{sig.name}: the refresh requests never were all in flight")
        time.sleep(0.01)
    for p in procs:
        p.send_signal(sig)
    for p in procs:
        p.wait(timeout=120)
    emu.control(latency_ms=0)
    _settle(emu)
    return sum(not _alive(cmd, name, env) for name in names)


def random_kills(emu: RunningEmulator, cmd: list[str], env: dict[str, str], n: int, seed: int) -> int:
    """Sessions lost out of ``n`` SIGKILLs at random moments 0-300 ms after ``ssocred process`` starts."""
    _seed(emu, "random", env)
    emu.control(latency_ms=100)
    lost = _random_kills(emu, cmd, "random", env, n, seed)
    emu.control(latency_ms=0)
    return lost


def _random_kills(emu: RunningEmulator, cmd: list[str], session: str, env: dict[str, str], n: int, seed: int) -> int:
    """SIGKILL ``ssocred process`` for ``session`` ``n`` times, 0-300 ms in, the refresh slowed; sessions lost."""
    draw = random.Random(seed)
    lost = 0
    for _ in range(n):
        if not _expire(session, env):
            _seed(emu, session, env)
        proc = subprocess.Popen(_argv(cmd, session), env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(draw.uniform(0.0, 0.3))
        proc.kill()
        proc.wait(timeout=60)
        emu.control(latency_ms=0)
        _settle(emu)
        if not _alive(cmd, session, env):
            lost += 1
            _seed(emu, session, env)
        emu.control(latency_ms=100)
    return lost


def _start_daemon(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([*cmd, "daemon", "--scan-interval", "1", "--log-file", str(log)], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while "answering ssocred process" not in (log.read_text() if log.exists() else ""):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit("the daemon did not start")
        time.sleep(0.1)
    return proc


def daemon_kills(emu: RunningEmulator, cmd: list[str], env: dict[str, str], n: int, seed: int,
                 log: Path) -> tuple[int, int, int]:
    """With a daemon: (sessions lost, refreshes the emulator saw, refreshes the daemon made) over ``n`` kills."""
    _seed(emu, "daemon", env)
    before = emu.stats()["create_token"]["refresh_token"]
    daemon = _start_daemon(cmd, env, log)
    try:
        emu.control(latency_ms=100)
        lost = _random_kills(emu, cmd, "daemon", env, n, seed)
        emu.control(latency_ms=0)
        time.sleep(2.5)  # the daemon's status follows within a scan
        from ssocred.adapters.notify import read_status

        status = read_status() or {}
    finally:
        daemon.terminate()
        daemon.wait(60)
    return lost, emu.stats()["create_token"]["refresh_token"] - before, int(status.get("refreshes", -1))


def commit_windows(log: Path) -> list[float]:
    """Milliseconds from the service's answer to the stored token, per refresh the daemon logged."""
    import re

    return [float(m) for m in re.findall(r"stored (\d+) ms after the answer", log.read_text())]


def main() -> None:
    """Run every case and print the lost sessions per case."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ssocred", default=None, help="the ssocred command to test (default: this checkout's)")
    parser.add_argument("--rounds", type=int, default=10, help="sessions signalled at once per signal (10)")
    parser.add_argument("--random-kills", type=int, default=30, help="random SIGKILLs (30)")
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--daemon", action="store_true", help="also kill clients of a running daemon")
    args = parser.parse_args()
    cmd = shlex.split(args.ssocred) if args.ssocred else ssocred_argv()
    with (
        tempfile.TemporaryDirectory(prefix="ssocred-chaos-") as tmp,
        keyring_and_emulator("--directory", DIRECTORY) as emu,
    ):
        env = isolated_env(Path(tmp), emu.env(), SSOCRED_KEYRING_SERVICE=f"ssocred-chaos-{os.getpid()}")
        os.environ.update({k: v for k, v in env.items() if k.startswith("SSOCRED_")})
        print(f"ssocred: {' '.join(cmd)}")
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL):
            lost = signal_round(emu, cmd, env, sig, args.rounds)
            print(f"{sig.name} during the refresh request: {lost} of {args.rounds} sessions lost", flush=True)
        lost = random_kills(emu, cmd, env, args.random_kills, args.seed)
        print(f"SIGKILL 0-300 ms after start: {lost} of {args.random_kills} sessions lost", flush=True)
        if args.daemon:
            log = Path(tmp) / "daemon.log"
            lost, seen, made = daemon_kills(emu, cmd, env, args.random_kills, args.seed, log)
            print(f"with a daemon, SIGKILL 0-300 ms after start: {lost} of {args.random_kills} sessions lost; "
                  f"the emulator saw {seen} refreshes, the daemon made {made}", flush=True)
            windows = sorted(commit_windows(log))
            if windows:
                print(f"daemon refresh commit (answer to stored token): median {windows[len(windows) // 2]:.0f} ms, "
                      f"max {windows[-1]:.0f} ms over {len(windows)} scheduled refreshes")
        stats = emu.stats()
        print(f"emulator: {stats['create_token']['refresh_token']} refreshes, "
              f"{stats['refresh_token_reuse_rejected']} rejected refresh-token reuses")


if __name__ == "__main__":
    main()
