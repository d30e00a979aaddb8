"""Wall time of ``ssocred configure populate`` against a sequential walk of the same portal calls.

Run: ``.venv/bin/python bench/populate.py [--rounds N] [--accounts 500] [--roles 2]``. It starts a
private Secret Service and the emulator with 500 accounts × 2 roles, 50 ms of latency per request
and 5 % of requests throttled (429), logs in, then times, interleaved in each round and each as a
fresh process: a sequential walk (ListAccounts pages, then ListAccountRoles for one account after
another, with the same client and retry policy ssocred uses) and ``ssocred configure populate``
writing all 1,000 profiles into a fresh config. Every run must list every account with no failure.
It prints medians, request and throttle counts, and the speed-up ratio as the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import isolated_env, keyring_and_emulator  # noqa: E402
from tests.support.cli import REGION, START_URL, ssocred_argv  # noqa: E402
from tests.support.emulator import RunningEmulator  # noqa: E402

#: The sequential walk: the same Portal adapter (client, retries) without concurrency or pacing.
SEQUENTIAL = """
import json, sys
from ssocred.adapters.portal import Portal
from ssocred.adapters.store import Store
token = Store().load_session("corp")
portal = Portal(token.region)
accounts = portal.accounts(token.access_token)
roles = sum(len(portal.roles(token.access_token, a.account_id)) for a in accounts)
print(json.dumps({"accounts": len(accounts), "roles": roles}))
"""

CONFIG = f"[sso-session corp]\nsso_start_url = {START_URL}\nsso_region = {REGION}\n"


def _timed(argv: list[str], env: dict[str, str]) -> tuple[float, dict[str, object]]:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=env["HOME"], capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(argv[:3])}: {proc.stderr.strip()}")
    result: dict[str, object] = json.loads(proc.stdout)
    return elapsed, result


def _throttled(emu: RunningEmulator) -> int:
    return int(emu.stats()["injected"]["throttle"])


def main() -> int:
    """Run the benchmark; the last line is the ratio."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--accounts", type=int, default=500)
    parser.add_argument("--roles", type=int, default=2)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--throttle-rate", type=float, default=0.05)
    args = parser.parse_args()
    with (
        keyring_and_emulator("--accounts", str(args.accounts), "--roles", str(args.roles), "--seed", "1") as emu,
        tempfile.TemporaryDirectory(prefix="ssocred-bench-") as d,
    ):
        tmp = Path(d)
        env = isolated_env(tmp, emu.env(), SSOCRED_KEYRING_SERVICE="ssocred-bench-populate")
        (tmp / "config").write_text(CONFIG)
        subprocess.run([*ssocred_argv(), "login", "--use-device-code", "--no-browser"], env=env,
                       stdout=subprocess.DEVNULL, check=True)
        emu.control(latency_ms=args.latency_ms, throttle_rate=args.throttle_rate)
        expected_profiles = args.accounts * args.roles
        sequential: list[float] = []
        populate: list[float] = []
        counts = {"sequential": [0, 0], "populate": [0, 0]}  # requests, throttled
        for _ in range(args.rounds):
            emu.reset()
            seconds, walked = _timed([sys.executable, "-c", SEQUENTIAL], env)
            assert walked == {"accounts": args.accounts, "roles": expected_profiles}, walked
            sequential.append(seconds)
            stats = emu.stats()
            counts["sequential"][0] += sum(stats["operations"].values())
            counts["sequential"][1] += _throttled(emu)
            emu.reset()
            (tmp / "config").write_text(CONFIG)
            seconds, written = _timed([*ssocred_argv(), "configure", "populate", "--sso-session", "corp",
                                       "--json"], env)
            assert written["profiles"] == expected_profiles and written["changed"] is True, written
            assert len(written["added"]) == expected_profiles  # type: ignore[arg-type]
            populate.append(seconds)
            stats = emu.stats()
            counts["populate"][0] += sum(stats["operations"].values())
            counts["populate"][1] += _throttled(emu)
        seq, pop = statistics.median(sequential), statistics.median(populate)
        print(f"machine: {os.cpu_count()} cpus, {sys.platform}, Python {sys.version.split()[0]}; "
              f"load average {os.getloadavg()[0]:.1f}; rounds: {args.rounds}")
        print(f"emulator: {args.accounts} accounts x {args.roles} roles, {args.latency_ms} ms latency, "
              f"{args.throttle_rate:.0%} of requests throttled")
        for name, values in (("sequential walk", sequential), ("ssocred configure populate", populate)):
            key = "sequential" if name.startswith("seq") else "populate"
            requests, throttled = counts[key]
            print(f"  {name:<28} median {statistics.median(values):6.2f} s  "
                  f"(runs: {', '.join(f'{v:.2f}' for v in values)}; {requests} requests, "
                  f"{throttled} throttled and retried)")
        print(f"every run listed all {args.accounts} accounts and {expected_profiles} roles: no failed request")
        print(f"populate is {seq / pop:.1f}x faster than the sequential walk "
              f"({expected_profiles} profiles written each run)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
