"""Cold burst: 64 parallel ``ssocred process`` for one role with nothing running, as a ratio to 64 ``python -c pass``.

Run: ``.venv/bin/python bench/cold_burst.py [--rounds N]``. Each round starts from a fresh keyring
service and state (only the SSO token stored: no role credentials cached, no daemon), then times,
interleaved: 64 parallel ``python -c pass`` (the floor), 64 parallel ``ssocred process`` with
autostart (one of them starts the daemon, the others wait for its socket), and the same burst with
``SSOCRED_AUTOSTART=0`` (every caller reads the keyring itself). It prints the medians, the
GetRoleCredentials calls per burst and the daemons started, and both ratios as the last line.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import isolated_env, keyring_and_emulator  # noqa: E402
from tests.support.cli import ACCOUNT, DIRECTORY, REGION, ROLE, START_URL, ssocred_argv  # noqa: E402

BURST = 64


def _burst(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    procs = [subprocess.Popen(argv, env=env, cwd=env["HOME"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for _ in range(BURST)]
    errors = [p.communicate()[1] for p in procs]
    took = time.perf_counter() - start
    failed = [err for p, err in zip(procs, errors, strict=True) if p.returncode]
    if failed:
        raise SystemExit(f"{len(failed)} callers failed, e.g.: {failed[0][-300:]!r}")
    return took


def _fresh(tmp: Path, emu_env: dict[str, str], autostart: str) -> dict[str, str]:
    """A new HOME, keyring service and runtime dir with only the SSO token stored."""
    home = tmp / uuid.uuid4().hex[:8]
    home.mkdir()
    env = isolated_env(home, emu_env, SSOCRED_KEYRING_SERVICE=f"ssocred-bench-{home.name}",
                       SSOCRED_AUTOSTART=autostart, PYTHONPYCACHEPREFIX=str(tmp / "pycache"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("CI", None)
    (home / "config").write_text(f"[sso-session corp]\nsso_start_url = {START_URL}\nsso_region = {REGION}\n"
                                 "sso_registration_scopes = sso:account:access\n")
    subprocess.run([*ssocred_argv(), "login", "--use-device-code"], env=env, check=True, capture_output=True)
    return env


def _stop_daemon(env: dict[str, str]) -> int:
    """SIGTERM the autostarted daemon; how many daemons were logged as started."""
    pid_file = Path(env["SSOCRED_RUNTIME_DIR"]) / "daemon.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text())
        os.kill(pid, signal.SIGTERM)
        for _ in range(300):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
    log = Path(env["SSOCRED_LOG_DIR"]) / "daemon.log"
    return log.read_text().count(" INFO started (pid ") if log.exists() else 0


def main() -> int:
    """Run the benchmark; prints the ratios last."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    process = [*ssocred_argv(), "process", "--sso-session", "corp", "--account-id", ACCOUNT, "--role-name", ROLE]
    floor_argv = [sys.executable, "-c", "pass"]
    samples: dict[str, list[float]] = {"floor": [], "autostart": [], "no daemon": []}
    fetches: dict[str, list[int]] = {"autostart": [], "no daemon": []}
    started: list[int] = []
    with (
        keyring_and_emulator("--directory", DIRECTORY) as emu,
        tempfile.TemporaryDirectory(prefix="ssocred-bench-") as d,
    ):
        tmp = Path(d)
        warm = _fresh(tmp, emu.env(), "0")
        _burst(floor_argv, warm)  # the page cache and the bytecode caches
        _burst(process, warm)
        for _ in range(args.rounds):
            samples["floor"].append(_burst(floor_argv, warm))
            for case, setting in (("autostart", "1"), ("no daemon", "0")):
                env = _fresh(tmp, emu.env(), setting)
                emu.reset()
                samples[case].append(_burst(process, env))
                fetches[case].append(emu.stats()["operations"].get("GetRoleCredentials", 0))
                count = _stop_daemon(env)
                if case == "autostart":
                    started.append(count)
    med = {name: statistics.median(v) for name, v in samples.items()}
    print(f"machine: {os.cpu_count()} cpus, {sys.platform}, Python {sys.version.split()[0]}; rounds: {args.rounds}; "
          f"load average {os.getloadavg()[0]:.1f}")
    for name, value in med.items():
        print(f"  {BURST} x {name:<10} median {value:6.2f} s   {value / med['floor']:5.2f}x the floor")
    print(f"  GetRoleCredentials per burst: autostart {fetches['autostart']}, no daemon {fetches['no daemon']}; "
          f"daemons started per autostart burst: {started}")
    print(f"cold burst / python -c pass burst: autostart {med['autostart'] / med['floor']:.2f}x, "
          f"no daemon {med['no daemon'] / med['floor']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
