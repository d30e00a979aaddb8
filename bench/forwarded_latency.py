"""Latency of ``ssocred process`` on a host that asks a forwarded daemon, as a ratio to ``python -c pass``.

Run: ``.venv/bin/python bench/forwarded_latency.py [--rounds N]``. It starts the emulator and a
private Secret Service in a throw-away HOME, logs in, saves a forward, starts the daemon's socket
server (which listens for the forward), then times, interleaved in each round: the interpreter
floor, ``ssocred process`` answered by the local daemon, and ``ssocred process`` run as on a remote
host (its own HOME and config, no usable keyring) asking the forward's socket, by explicit
arguments and by a profile. The remote host's socket is the forward's own socket here: what ssh
adds on a real link (its round trip) is not part of what ssocred costs and is left out.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import isolated_env, keyring_and_emulator  # noqa: E402
from tests.support.cli import ACCOUNT, DIRECTORY, REGION, ROLE, START_URL, ssocred_argv  # noqa: E402


def _time(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, cwd=env["HOME"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def _imports(argv: list[str], env: dict[str, str]) -> list[tuple[int, str]]:
    """(cumulative microseconds, module) of every top-level import ``argv`` makes."""
    run = subprocess.run(argv, env={**env, "PYTHONPROFILEIMPORTTIME": "1"}, cwd=env["HOME"], capture_output=True,
                         text=True, check=True)
    rows = []
    for line in run.stderr.splitlines():
        parts = [p.strip() for p in line.removeprefix("import time:").split("|")]
        if line.startswith("import time:") and len(parts) == 3 and parts[1].isdigit() and not parts[2].startswith(" "):
            rows.append((int(parts[1]), parts[2]))
    return rows


def _session(tmp: Path) -> str:
    return (f"[sso-session corp]\nsso_start_url = {START_URL}\nsso_region = {REGION}\n"
            "sso_registration_scopes = sso:account:access\n")


def main() -> int:
    """Run the benchmark; prints the ratios last."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    with (
        keyring_and_emulator("--directory", DIRECTORY) as emu,
        tempfile.TemporaryDirectory(prefix="ssocred-bench-") as d,
    ):
        tmp = Path(d)
        laptop = isolated_env(tmp / "laptop", emu.env(), SSOCRED_KEYRING_SERVICE="ssocred-bench",
                              PYTHONPYCACHEPREFIX=str(tmp / "pycache"))
        (tmp / "laptop").mkdir()
        (tmp / "laptop" / "config").write_text(_session(tmp))
        ssocred = ssocred_argv()
        subprocess.run([*ssocred, "login", "--use-device-code"], env=laptop, check=True, capture_output=True)
        added = subprocess.run([*ssocred, "forward", "bench", "--allow", "*", "--json"], env=laptop, check=True,
                               capture_output=True, text=True)
        local_socket = json.loads(added.stdout)["local_socket"]
        server = subprocess.Popen([sys.executable, "-m", "ssocred.daemon.server"], env=laptop, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert server.stdout is not None
        if not server.stdout.readline():
            raise SystemExit("the socket server did not start")
        remote_home = tmp / "remote"
        remote = isolated_env(remote_home, emu.env(), PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
                              SSOCRED_FORWARD_SOCKET=local_socket, PYTHONPYCACHEPREFIX=str(tmp / "pycache"))
        remote_home.mkdir()
        (remote_home / "config").write_text(
            _session(tmp) + f"[profile dev]\nssocred_session = corp\nssocred_account_id = {ACCOUNT}\n"
            f"ssocred_role_name = {ROLE}\ncredential_process = ssocred process --profile dev\n")
        by_args = [*ssocred, "process", "--sso-session", "corp", "--account-id", ACCOUNT, "--role-name", ROLE]
        try:
            cases = {
                "python -c pass": ([sys.executable, "-c", "pass"], laptop),
                "ssocred process (local daemon)": (by_args, laptop),
                "ssocred process (forwarded daemon, arguments)": (by_args, remote),
                "ssocred process (forwarded daemon, --profile)": ([*ssocred, "process", "--profile", "dev"], remote),
            }
            for argv, env in cases.values():  # warm up, and check every case answers
                _time(argv, env)
            imports = _imports(by_args, remote)
            samples: dict[str, list[float]] = {name: [] for name in cases}
            for _ in range(args.rounds):
                for name, (argv, env) in cases.items():
                    samples[name].append(_time(argv, env))
        finally:
            server.terminate()
            server.wait(10)
    print("slowest imports of the forwarded call (cumulative ms):")
    for micros, module in sorted(imports, reverse=True)[:8]:
        print(f"  {micros / 1000:7.1f}  {module}")
    floor = statistics.median(samples["python -c pass"])
    print(f"{'case':50} {'median ms':>10} {'ratio':>7}")
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"{name:50} {median * 1000:10.1f} {median / floor:7.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
