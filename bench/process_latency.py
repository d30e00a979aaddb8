"""Latency of ``ssocred process`` on a cache hit, as a ratio to ``python -c pass``.

Run: ``.venv/bin/python bench/process_latency.py [--rounds N]``. It starts the emulator and a
private Secret Service (gnome-keyring on its own D-Bus) in a throw-away HOME, logs in, primes the
cache, starts the daemon's socket server, then times, interleaved in each round: the interpreter
floor, pip's console-script wrapper alone (``import re`` and one ``re.sub``), ``ssocred
process`` without a daemon (keyring cache hit), ``ssocred process`` answered by the daemon (also
without pip's wrapper, to show what ssocred itself adds), and for reference a fresh boto3
process resolving the same role through botocore's native SSO provider, and once per round with
the daemon stopped (SIGSTOP), as a suspended machine's would be. It prints medians, ratios, where
the import time goes, the stopped daemon's cost, and both process/floor ratios as the last line.

``--wheel`` times ssocred as users install it: a wheel built from this checkout, installed (not
editable) with its dependencies into a new virtual environment, whose interpreter is then the
floor too. It adds one case: the daemon-answered call started with ``python -S`` and the install's
site-packages put on ``sys.path`` by hand, which is what a launcher that skips ``site`` would cost.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
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

#: What pip's console script does before calling ssocred: import re and tidy argv[0] with it.
WRAPPER = r"import re, sys; sys.argv[0] = re.sub(r'(-script\.pyw|\.exe)?$', '', sys.argv[0])"
#: The console script minus that wrapper.
DIRECT = "from ssocred.__main__ import main; main()"
NATIVE = ("import boto3; boto3.Session(profile_name='native').get_credentials().get_frozen_credentials()")


def _start_server(env: dict[str, str], python: str) -> subprocess.Popen[str]:
    """The daemon's socket server (``python -m ssocred.daemon.server``), once it listens."""
    proc = subprocess.Popen([python, "-m", "ssocred.daemon.server"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    if not proc.stdout.readline():
        raise SystemExit("the socket server did not start")
    return proc


def _imports(argv: list[str], env: dict[str, str]) -> list[tuple[int, str]]:
    """(cumulative microseconds, module) of every import ``argv`` makes."""
    imp = subprocess.run(argv, env={**env, "PYTHONPROFILEIMPORTTIME": "1"}, capture_output=True, text=True,
                         check=True)
    rows = []
    for line in imp.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            parts = [p.strip() for p in line[len("import time:"):].split("|")]
            if parts[1].isdigit():
                rows.append((int(parts[1]), parts[2]))
    return rows


def _time(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    # From HOME, as an SDK would run it: in the checkout, ``-c`` would find ssocred in the cwd.
    subprocess.run(argv, env=env, cwd=env["HOME"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def _install_wheel(tmp: Path) -> tuple[Path, Path]:
    """This checkout built as a wheel and installed (not editable) into a new venv: (its python, site-packages)."""
    wheels, venv = tmp / "wheel", tmp / "venv"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)], check=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", *map(str, wheels.glob("*.whl"))], check=True)
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    return python, Path(purelib)


def _setup(tmp: Path, emu_env: dict[str, str]) -> dict[str, str]:
    # Timed as installed, with bytecode caches (kept out of the source tree).
    env = isolated_env(tmp, emu_env, SSOCRED_KEYRING_SERVICE="ssocred-bench", PYTHONPYCACHEPREFIX=str(tmp / "pycache"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
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
    parser.add_argument("--wheel", action="store_true", help="time a wheel installed into a new venv (not editable)")
    args = parser.parse_args()
    with (
        keyring_and_emulator("--directory", DIRECTORY) as emu,
        tempfile.TemporaryDirectory(prefix="ssocred-bench-") as d,
    ):
        python, ssocred = sys.executable, ssocred_argv()
        if args.wheel:
            venv_python, purelib = _install_wheel(Path(d))
            python, ssocred = str(venv_python), [str(venv_python.parent / "ssocred")]
        env = _setup(Path(d), emu.env())
        process_args = ["process", "--sso-session", "corp", "--account-id", ACCOUNT, "--role-name", ROLE]
        process = [*ssocred, *process_args]
        direct = [python, "-c", DIRECT, *process_args]
        first = subprocess.run(process, env=env, capture_output=True, text=True, check=True)
        assert json.loads(first.stdout)["Version"] == 1
        # The no-daemon case looks for the socket in a directory where there is none.
        alone = {**env, "SSOCRED_RUNTIME_DIR": str(Path(d) / "run-no-daemon")}
        server = _start_server(env, python)
        try:
            cases = {
                "python -c pass": ([python, "-c", "pass"], env),
                "python -S -c pass": ([python, "-S", "-c", "pass"], env),
                "python -c <pip's script wrapper alone>": ([python, "-c", WRAPPER], env),
                "ssocred process (cache hit, no daemon)": (process, alone),
                "ssocred process (daemon)": (process, env),
                "ssocred process (daemon) without the wrapper": (direct, env),
                "boto3 native SSO provider (reference)": ([python, "-c", NATIVE], env),
            }
            if args.wheel:
                no_site = f"import sys; sys.path.insert(0, {str(purelib)!r}); {DIRECT}"
                cases["ssocred process (daemon), python -S"] = ([python, "-S", "-c", no_site, *process_args], env)
            for argv, case_env in cases.values():  # warm the page cache and the daemon
                _time(argv, case_env)
            samples: dict[str, list[float]] = {name: [] for name in cases}
            stopped = "ssocred process (daemon stopped with SIGSTOP)"
            samples[stopped] = []
            for _ in range(args.rounds):
                for name, (argv, case_env) in cases.items():
                    samples[name].append(_time(argv, case_env))
                # A frozen daemon (a suspended laptop's, say): the client notices its silence and falls back.
                os.kill(server.pid, signal.SIGSTOP)
                try:
                    samples[stopped].append(_time(process, env))
                finally:
                    os.kill(server.pid, signal.SIGCONT)
            daemon_imports = _imports(process, env)
        finally:
            server.terminate()
            server.wait(10)
        med = {name: statistics.median(v) for name, v in samples.items()}
        floor = med["python -c pass"]
        print(f"machine: {os.cpu_count()} cpus, {sys.platform}, Python {sys.version.split()[0]}; "
              f"ssocred: {'a wheel installed in a new venv' if args.wheel else 'this checkout'}; "
              f"keyring: Secret Service (gnome-keyring); rounds: {args.rounds}; "
              f"load average {os.getloadavg()[0]:.1f}")
        for name, value in med.items():
            print(f"  {name:<46} median {value * 1000:7.1f} ms   {value / floor:5.2f}x the floor")
        for label, rows in (("no daemon", _imports(process, alone)), ("daemon", daemon_imports)):
            print(f"  largest cumulative imports of ssocred process, {label} (us):")
            for us, name in sorted(rows, reverse=True)[:6]:
                print(f"    {us:>8}  {name}")
        alone_ratio = med["ssocred process (cache hit, no daemon)"] / floor
        daemon_ratio = med["ssocred process (daemon)"] / floor
        print(f"a stopped daemon costs a cache hit {max(samples[stopped]) * 1000:.0f} ms at most "
              f"({(med[stopped] - med['ssocred process (cache hit, no daemon)']) * 1000:.0f} ms over no daemon)")
        print(f"ssocred process / python -c pass: no daemon {alone_ratio:.2f}x, daemon {daemon_ratio:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
