"""Latency of ``ssocred process`` on a cache hit, as a ratio to ``python -c pass``.

Run: ``.venv/bin/python bench/process_latency.py [--rounds N]``. It starts the emulator and a
private Secret Service (gnome-keyring on its own D-Bus) in a throw-away HOME, logs in, primes the
cache, then times, interleaved in each round: the interpreter floor, ``ssocred process`` (cache
hit, no daemon), and for reference a fresh boto3 process resolving the same role through
botocore's native SSO provider. It prints medians, ratios, where the import time goes, and the
process/floor ratio as the last line.
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

from tests.support.cli import ACCOUNT, DIRECTORY, REGION, ROLE, START_URL, ssocred_argv  # noqa: E402
from tests.support.emulator import start_emulator  # noqa: E402
from tests.support.secret_service import start_private_secret_service  # noqa: E402

NATIVE = ("import boto3; boto3.Session(profile_name='native').get_credentials().get_frozen_credentials()")


def _time(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def _setup(tmp: Path, emu_env: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(emu_env)
    env.update({
        "HOME": str(tmp),
        "AWS_CONFIG_FILE": str(tmp / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "SSOCRED_STATE_DIR": str(tmp / "state"),
        "SSOCRED_RUNTIME_DIR": str(tmp / "run"),
        "SSOCRED_KEYRING_SERVICE": "ssocred-bench",
    })
    (tmp / "config").write_text(
        f"[sso-session corp]\nsso_start_url = {START_URL}\nsso_region = {REGION}\n"
        "sso_registration_scopes = sso:account:access\n"
        f"[profile native]\nsso_session = corp\nsso_account_id = {ACCOUNT}\nsso_role_name = {ROLE}\n"
        f"region = {REGION}\n"
    )
    subprocess.run([*ssocred_argv(), "login", "--use-device-code", "--export-aws-cli-cache"], env=env,
                   check=True, capture_output=True)
    return env


def main() -> int:
    """Run the benchmark; prints the ratio last."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    service = start_private_secret_service()
    if service is None:
        print("gnome-keyring-daemon and dbus-daemon are needed (apt-get install gnome-keyring dbus)")
        return 2
    os.environ["DBUS_SESSION_BUS_ADDRESS"] = service.address
    emu = start_emulator("--directory", DIRECTORY)
    try:
        with tempfile.TemporaryDirectory(prefix="ssocred-bench-") as d:
            env = _setup(Path(d), emu.env())
            process = [*ssocred_argv(), "process", "--sso-session", "corp", "--account-id", ACCOUNT,
                       "--role-name", ROLE]
            first = subprocess.run(process, env=env, capture_output=True, text=True, check=True)
            assert json.loads(first.stdout)["Version"] == 1
            cases = {
                "python -c pass": [sys.executable, "-c", "pass"],
                "ssocred process (cache hit, no daemon)": process,
                "boto3 native SSO provider (reference)": [sys.executable, "-c", NATIVE],
            }
            for argv in cases.values():  # warm the page cache
                _time(argv, env)
            samples: dict[str, list[float]] = {name: [] for name in cases}
            for _ in range(args.rounds):
                for name, argv in cases.items():
                    samples[name].append(_time(argv, env))
            med = {name: statistics.median(v) for name, v in samples.items()}
            floor = med["python -c pass"]
            print(f"machine: {os.cpu_count()} cpus, {sys.platform}, Python {sys.version.split()[0]}; "
                  f"keyring: Secret Service (gnome-keyring); rounds: {args.rounds}")
            for name, value in med.items():
                print(f"  {name:<42} median {value * 1000:7.1f} ms   {value / floor:5.1f}x the floor")
            imp = subprocess.run(process, env={**env, "PYTHONPROFILEIMPORTTIME": "1"}, capture_output=True, text=True,
                                 check=True)
            rows = []
            for line in imp.stderr.splitlines():
                if line.startswith("import time:") and "|" in line:
                    parts = [p.strip() for p in line[len("import time:"):].split("|")]
                    if parts[1].isdigit():
                        rows.append((int(parts[1]), parts[2]))
            print("  largest cumulative imports of ssocred process (us):")
            for us, name in sorted(rows, reverse=True)[:8]:
                print(f"    {us:>8}  {name}")
            ratio = med["ssocred process (cache hit, no daemon)"] / floor
            print(f"ssocred process / python -c pass: {ratio:.2f}x")
    finally:
        emu.stop()
        service.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
