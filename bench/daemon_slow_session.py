"""Two SSO sessions, one behind a slow service: how long the fast session's refresh takes.

Run: ``.venv/bin/python bench/daemon_slow_session.py [--rounds 5] [--latency-ms 5000]``. Two emulators,
one per SSO region (botocore's endpoint rules from ``AWS_DATA_PATH``, see ``tests/support/regions.py``),
a private Secret Service and one ``ssocred daemon``. A token falls due by being rewritten as if time
had passed. Each round makes the slow session due first, and the fast one as soon as the slow one's
request is with its service; each is timed from its own due moment until the daemon logs its refresh.
Rounds alternate between the slow emulator answering at once (the reference) and after
``--latency-ms``; the fast session's time beside a slow neighbour is printed as a ratio of its time
beside a fast one. Target: about 1x (the slow session delays no other).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import isolated_env, private_keyring  # noqa: E402
from tests.support.cli import DIRECTORY, START_URL, ssocred_argv  # noqa: E402
from tests.support.emulator import RunningEmulator, start_emulator  # noqa: E402
from tests.support.regions import region_endpoints  # noqa: E402

REGIONS = {"fast": "us-east-1", "slow": "eu-west-1"}


def _make_due(session: str) -> None:
    from ssocred.adapters.store import Store

    store, now = Store(), time.time()
    token = store.load_session(session)
    assert token is not None
    store.save_session(session, dataclasses.replace(token, issued_at=now - 3000, expires_at=now + 600))


def _refreshed(log: Path, session: str) -> int:
    text = log.read_text() if log.exists() else ""
    return len(re.findall(rf"session {session}: token refreshed", text))


def _wait(done: Callable[[], bool], what: str, log: Path) -> None:
    deadline = time.monotonic() + 120
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} not within 120 s:\n{log.read_text()[-3000:]}")
        time.sleep(0.02)


def _round(log: Path, slow: RunningEmulator) -> dict[str, float]:
    """The slow session falls due, then (once its request is with its service) the fast one.

    Seconds from each one's due moment until its refresh is logged.
    """
    before = {name: _refreshed(log, name) for name in REGIONS}
    start = {"slow": time.monotonic()}
    _make_due("slow")
    # A slow service holds the request: wait until it has it. A fast one answers at once: wait for the answer.
    _wait(lambda: slow.stats()["in_flight_now"].get("CreateToken", 0) > 0 or _refreshed(log, "slow") > before["slow"],
          "the slow session's refresh", log)
    start["fast"] = time.monotonic()
    _make_due("fast")
    took: dict[str, float] = {}

    def done() -> bool:
        for name in REGIONS:
            if name not in took and _refreshed(log, name) > before[name]:
                took[name] = time.monotonic() - start[name]
        return len(took) == len(REGIONS)

    _wait(done, "both refreshes", log)
    return took


def _start_daemon(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    address = f"ssocred-bench-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + address)
        proc = subprocess.Popen([sys.executable, "-m", "ssocred.daemon.main", "--log-file", str(log),
                                 "--scan-interval", "1"], env={**env, "NOTIFY_SOCKET": "@" + address},
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        sock.settimeout(120)
        while b"READY=1" not in sock.recv(4096):
            pass
    return proc


def main() -> int:
    """Run the benchmark; prints the ratio last."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each kind (5)")
    parser.add_argument("--latency-ms", type=int, default=5000, help="latency of the slow service (5000)")
    args = parser.parse_args()
    service = private_keyring()
    emus: dict[str, RunningEmulator] = {name: start_emulator("--directory", DIRECTORY) for name in REGIONS}
    proc = None
    try:
        with tempfile.TemporaryDirectory(prefix="ssocred-bench-") as d:
            tmp = Path(d)
            data = region_endpoints(tmp / "botocore-data", {REGIONS[n]: e.url for n, e in emus.items()})
            env = isolated_env(tmp, data, SSOCRED_KEYRING_SERVICE=f"ssocred-bench-{uuid.uuid4().hex[:8]}",
                               PYTHONPATH=str(ROOT))
            (tmp / "config").write_text("".join(
                f"[sso-session {name}]\nsso_start_url = {START_URL}\nsso_region = {region}\n"
                "sso_registration_scopes = sso:account:access\n" for name, region in REGIONS.items()))
            for name in REGIONS:
                subprocess.run([*ssocred_argv(), "login", "--sso-session", name, "--use-device-code"], env=env,
                               check=True, capture_output=True)
            os.environ.update(env)
            log = tmp / "daemon.log"
            proc = _start_daemon(env, log)
            _round(log, emus["slow"])  # warm-up: clients built, modules loaded
            fast: dict[str, list[float]] = {"alone": [], "slow": []}
            slow: dict[str, list[float]] = {"alone": [], "slow": []}
            for i in range(2 * args.rounds):
                kind = "slow" if i % 2 else "alone"
                emus["slow"].control(latency_ms=args.latency_ms if kind == "slow" else 0)
                took = _round(log, emus["slow"])
                fast[kind].append(took["fast"])
                slow[kind].append(took["slow"])
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
            print(f"machine: {os.cpu_count()} cpus, {sys.platform}, Python {sys.version.split()[0]}; "
                  f"keyring: Secret Service (gnome-keyring); daemon exit {code} on SIGTERM")
            print(f"{args.rounds} rounds each, interleaved; medians from falling due to 'token refreshed' in the log "
                  "(the 1 s scan interval included)")
            print(f"  {'slow service answers':24s} {'fast session':>14s} {'slow session':>14s}")
            for kind, label in (("alone", "at once (reference)"), ("slow", f"after {args.latency_ms} ms")):
                print(f"  {label:24s} {statistics.median(fast[kind]):12.2f} s {statistics.median(slow[kind]):12.2f} s")
            ratio = statistics.median(fast["slow"]) / statistics.median(fast["alone"])
            print(f"fast session's refresh beside a slow one: {ratio:.2f}x its time beside a fast one (target ~1x)")
            return 0
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        for emu in emus.values():
            emu.stop()
        service.stop()


if __name__ == "__main__":
    raise SystemExit(main())
