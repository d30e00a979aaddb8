"""The memory store on a machine without any keyring: ``ssocred daemon --store memory`` and its clients.

No D-Bus at all and no keyring backend (checked first: keyring itself picks its failing backend);
real ``ssocred`` processes, a real memory-store daemon, the emulator over HTTP.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from keyring.backend import get_all_keyring
from keyring.errors import PasswordDeleteError

from ssocred import socket_protocol
from ssocred.adapters.memory_keyring import DaemonKeyring, MemoryKeyring
from ssocred.errors import EXIT_LOGIN_REQUIRED, EXIT_STORE, EXIT_USAGE
from tests.support.cli import ACCOUNT, ROLE, process_profile, run, session_config, ssocred_argv, write_config
from tests.support.daemon import RunningDaemon, start_daemon
from tests.support.emulator import REPO_ROOT, RunningEmulator, sso_client

ARGS = ("process", "--sso-session", "corp", "--account-id", ACCOUNT, "--role-name", ROLE)
CALLERS = 32
#: What the store's error must name: both ways out on a machine without a keyring.
BOTH_WAYS = ("ssocred daemon --store memory", "ssocred login", "ssocred forward", "Remote hosts, WSL and containers")
#: Largest file scanned for secrets outside the test's own directories (images, databases: not ssocred's).
SCAN_LIMIT = 64 << 20


@pytest.fixture
def headless(home: Path, emu: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> RunningEmulator:
    """HOME + emulator + a ``[sso-session corp]``, with no D-Bus session bus and no keyring backend chosen."""
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    write_config(session_config("corp"))
    probe = subprocess.run([sys.executable, "-c", "import keyring; k = keyring.get_keyring(); "
                            "print(type(k).__module__, type(k).__name__)"],
                           capture_output=True, text=True, timeout=60, check=True)
    assert probe.stdout.split() == ["keyring.backends.fail", "Keyring"], probe.stdout  # really no keyring here
    return emu


@pytest.fixture
def memory_daemon(headless: RunningEmulator, tmp_path: Path, daemons: list[RunningDaemon]) -> RunningDaemon:
    """A running ``ssocred daemon --store memory`` for the headless machine."""
    return start_daemon(daemons, tmp_path, "--store", "memory", "--verbose")


def _one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ssocred: ") and "Traceback" not in stderr, stderr
    return lines[0]


def _names_both_ways_out(stderr: str) -> None:
    line = _one_line(stderr)
    assert "no usable OS keyring" in line
    for part in BOTH_WAYS:
        assert part in line, (part, line)


def _login() -> None:
    r = run("login", "--sso-session", "corp", "--use-device-code", timeout=120)
    assert r.returncode == 0, r.stderr
    assert "stored in: the memory of the ssocred daemon" in r.stdout


def _status() -> tuple[dict[str, object], str]:
    as_json, text = run("status", "--json"), run("status")
    assert as_json.returncode == 0 and text.returncode == 0, as_json.stderr + text.stderr
    return json.loads(as_json.stdout), text.stdout


def _secrets() -> dict[str, str]:
    """The token, refresh token and client secret the daemon holds, read as any client reads them."""
    script = ("import json; from ssocred.adapters.store import Store; t = Store().load_session('corp'); "
              "print(json.dumps({'access token': t.access_token, 'refresh token': t.refresh_token, "
              "'client secret': t.registration.client_secret}))")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env,
                       check=False)
    assert r.returncode == 0, r.stderr
    found: dict[str, str] = json.loads(r.stdout)
    return found


def _files_with(secrets: dict[str, str], roots: list[Path], since: float | None = None) -> Iterator[str]:
    """``"<file>: <which secret>"`` for every readable file under ``roots`` that holds one (changed ``since``)."""
    needles = {name: value.encode() for name, value in secrets.items()}
    for root in roots:
        for directory, _dirs, files in os.walk(root, onerror=lambda _: None):
            for name in files:
                path = os.path.join(directory, name)
                try:
                    st = os.lstat(path)
                    if not os.path.isfile(path) or os.path.islink(path) or st.st_size > SCAN_LIMIT:
                        continue
                    if since is not None and max(st.st_mtime, st.st_ctime) < since:
                        continue  # written before the test: it cannot hold a secret the test's emulator made
                    with open(path, "rb") as file:
                        data = file.read()
                except OSError:
                    continue
                yield from (f"{path}: {what}" for what, needle in needles.items() if needle in data)


@pytest.mark.slow
def test_a_memory_store_serves_a_machine_without_keyring_and_ends_with_its_daemon(
        headless: RunningEmulator, tmp_path: Path, daemons: list[RunningDaemon]) -> None:
    began = time.time()
    # Without a keyring and without a memory-store daemon: one line naming both ways out, exit 6.
    refused = run("login", "--sso-session", "corp", "--use-device-code")
    assert refused.returncode == EXIT_STORE
    _names_both_ways_out(refused.stderr)

    daemon = start_daemon(daemons, tmp_path, "--store", "memory", "--verbose")
    _login()
    headless.reset()
    procs = [subprocess.Popen([*ssocred_argv(), *ARGS], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(CALLERS)]
    answers = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0] * CALLERS, [err for _, err in answers if err]
    outputs = {out for out, _ in answers}
    assert len(outputs) == 1
    assert headless.stats()["operations"]["GetRoleCredentials"] == 1
    creds = json.loads(outputs.pop())

    data, text = _status()
    assert data["store"] == {"kind": "memory", "pid": daemon.proc.pid, "lost_sessions": []}
    assert [s["logged_in"] for s in data["sessions"]] == [True]
    assert f"store: the memory of the ssocred daemon (pid {daemon.proc.pid}) only" in text
    assert "when the daemon restarts, every session needs a new login" in text

    secrets = {**_secrets(), "secret key": creds["SecretAccessKey"], "session token": creds["SessionToken"]}
    assert all(len(value) >= 16 for value in secrets.values()), secrets.keys()
    accounts = sso_client(headless.url).list_accounts(accessToken=secrets["access token"])["accountList"]
    assert accounts  # the real token: the portal takes it
    assert [f.name for f in (tmp_path / "state").glob("index-memory*.json")]  # the memory store's own index
    own = [tmp_path, Path(os.environ["HOME"])]
    shared = [Path("/tmp"), *(Path(p) for p in {os.environ.get("XDG_RUNTIME_DIR", ""), f"/run/user/{os.getuid()}"}
                                if p and os.path.isdir(p))]
    assert list(_files_with(secrets, own)) == []
    assert list(_files_with(secrets, shared, since=began)) == []

    limits = Path(f"/proc/{daemon.proc.pid}/limits").read_text()
    assert [line.split()[4:6] for line in limits.splitlines() if line.startswith("Max core file size")] == [["0", "0"]]
    locked = int(next(line.split()[1] for line in Path(f"/proc/{daemon.proc.pid}/status").read_text().splitlines()
                      if line.startswith("VmLck:")))
    assert locked > 0 or "swap may hold the secrets" in daemon.log_text()
    # The network worker held the tokens for the fetch: it is locked whenever the daemon is.
    worker = int(daemon.wait_log(r"network worker started \(pid \d+\)")[-1].split("(pid ")[1].split(")")[0])
    worker_locked = int(next(line.split()[1] for line in Path(f"/proc/{worker}/status").read_text().splitlines()
                             if line.startswith("VmLck:")))
    assert (worker_locked > 0) == (locked > 0)

    # The daemon ends, and its secrets with it: the next call says in one line that a login is needed.
    daemon.proc.send_signal(signal.SIGKILL)
    daemon.proc.wait(30)
    for autostart in ("0", "1"):  # and autostart never puts a keyring daemon in its place
        gone = run(*ARGS, env={**os.environ, "SSOCRED_AUTOSTART": autostart})
        assert gone.returncode == EXIT_LOGIN_REQUIRED, gone.stderr
        line = _one_line(gone.stderr)
        assert "SSO session 'corp': the memory-store daemon that held it has stopped" in line
        assert "ssocred daemon --store memory" in line and "ssocred login --sso-session corp" in line
    assert (tmp_path / "run" / "daemon.pid").read_text().strip() == str(daemon.proc.pid)  # the killed one's
    assert not (tmp_path / "log" / "daemon.log").exists()  # where an autostarted daemon would log

    data, text = _status()
    assert data["store"] == {"kind": "keyring", "pid": None, "lost_sessions": ["corp"]}
    assert data["sessions"] == [{"session": "corp", "logged_in": False, "credentials": [], "lost_with_daemon": True}]
    assert "corp: not logged in (the memory-store daemon that held it has stopped)" in text
    assert "store: the memory-store daemon that held corp has stopped" in text
    again = run("login", "--sso-session", "corp", "--use-device-code")
    assert again.returncode == EXIT_STORE
    _names_both_ways_out(again.stderr)
    # Logging out clears what the stopped daemon left (its entries: its secrets went with it).
    out = run("logout", "--sso-session", "corp", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["sessions"][0]["portal_error"].startswith("held by a memory-store daemon")
    data, _ = _status()
    assert data["store"]["lost_sessions"] == []
    assert data["sessions"] == [{"session": "corp", "logged_in": False, "credentials": [], "lost_with_daemon": False}]


@pytest.mark.slow
def test_a_new_memory_daemon_starts_empty(headless: RunningEmulator, tmp_path: Path,
                                          daemons: list[RunningDaemon]) -> None:
    first = start_daemon(daemons, tmp_path, "--store", "memory")
    _login()
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(30)
    second = start_daemon(daemons, tmp_path, "--store", "memory")
    second.wait_log("need a new login: corp")
    data, _ = _status()
    assert data["store"]["kind"] == "memory"
    assert data["sessions"] == [{"session": "corp", "logged_in": False, "credentials": [], "lost_with_daemon": False}]
    r = run(*ARGS)
    assert r.returncode == EXIT_LOGIN_REQUIRED
    assert "SSO session 'corp' is not logged in" in _one_line(r.stderr)


@pytest.mark.slow
def test_every_command_keeps_its_secrets_in_the_memory_store(
        memory_daemon: RunningDaemon, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(session_config("corp") + process_profile("dev", ACCOUNT, ROLE))
    browser = Path(__file__).parent / "support" / "browser.py"
    monkeypatch.setenv("BROWSER", f"{sys.executable} {browser} %s")
    login = run("login", "--sso-session", "corp")  # PKCE through the (stand-in) browser
    assert login.returncode == 0, login.stderr
    assert "via" in login.stdout and "stored in: the memory of the ssocred daemon" in login.stdout
    env = run("env", "--profile", "dev", "--format", "json")
    assert env.returncode == 0, env.stderr
    key = json.loads(env.stdout)["AWS_ACCESS_KEY_ID"]
    shown = run("exec", "--profile", "dev", "--", sys.executable, "-c",
                "import os; print(os.environ['AWS_ACCESS_KEY_ID'])")
    assert (shown.returncode, shown.stdout.strip()) == (0, key), shown.stderr
    who = run("whoami", "--profile", "dev", "--json")
    assert who.returncode == 0 and json.loads(who.stdout)["account"] == ACCOUNT, who.stderr
    out = run("logout", "--sso-session", "corp")
    assert out.returncode == 0 and "Logged out of 'corp'" in out.stdout, out.stderr
    data, _ = _status()
    assert [s["logged_in"] for s in data["sessions"]] == [False]
    assert _ask({"op": "item-get", "service": socket_protocol.keyring_service(), "backend": "",
                 "username": "session:corp"}) == (0, {"value": None})
    after = run(*ARGS)
    assert after.returncode == EXIT_LOGIN_REQUIRED and "is not logged in" in _one_line(after.stderr)


def _ask(request: dict[str, object]) -> tuple[int, dict[str, object]] | None:
    reply = socket_protocol.exchange((json.dumps({"v": socket_protocol.PROTOCOL_VERSION, **request}) + "\n").encode())
    return None if reply is None else (reply[0], json.loads(reply[1]))


@pytest.mark.slow
def test_the_memory_daemon_answers_any_backend_of_its_service_only(memory_daemon: RunningDaemon) -> None:
    _login()
    service = socket_protocol.keyring_service()
    other_backend = {**os.environ, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    r = run(*ARGS, env=other_backend)
    assert r.returncode == 0, r.stderr
    memory_daemon.wait_log(f"answered corp {ACCOUNT} {ROLE}: exit 0")
    assert _ask({"op": "store", "service": service, "backend": "x"}) == (
        0, {"store": "memory", "pid": memory_daemon.proc.pid})
    got = _ask({"op": "item-get", "service": service, "backend": "x", "username": "session:corp"})
    assert got is not None and got[0] == 0 and isinstance(got[1]["value"], str)
    # Another keyring service's items are not this daemon's: it sends the client to its own keyring.
    assert _ask({"op": "item-get", "service": "someone-else", "backend": "x", "username": "session:corp"}) is None
    assert _ask({"op": "item-set", "service": service, "backend": "", "username": "k"})[0] == EXIT_USAGE
    assert _ask({"op": "item-delete", "service": service, "backend": "", "username": "nothing-here"}) == (
        0, {"deleted": False})


@pytest.mark.slow
def test_a_keyring_daemon_says_so_and_keeps_no_items(headless: RunningEmulator, tmp_path: Path,
                                                     daemons: list[RunningDaemon]) -> None:
    daemon = start_daemon(daemons, tmp_path)
    daemon.wait_log("no usable OS keyring .*: every request will fail until one is usable; to keep the secrets in "
                    "this daemon's memory instead, run: ssocred daemon --store memory")
    service = socket_protocol.keyring_service()
    assert _ask({"op": "store", "service": service, "backend": ""}) == (0, {"store": "keyring", "pid": daemon.proc.pid})
    assert _ask({"op": "item-get", "service": service, "backend": "", "username": "session:corp"}) is None
    r = run("status", "--json")
    assert json.loads(r.stdout)["store"] == {"kind": "keyring", "pid": None, "lost_sessions": []}


def test_memory_store_needs_the_socket(headless: RunningEmulator) -> None:
    r = run("daemon", "--store", "memory", "--no-socket")
    assert r.returncode == EXIT_USAGE and "--store memory needs the socket" in r.stderr


def test_the_memory_keyring_keeps_keyrings_contract_and_is_never_detected() -> None:
    kr = MemoryKeyring()
    assert kr.get_password("s", "k") is None
    kr.set_password("s", "k", "v")
    kr.set_password("s", "k", "w")  # replaced, not added beside
    kr.set_password("t", "k", "x")  # services apart
    assert (kr.get_password("s", "k"), kr.get_password("t", "k"), len(kr)) == ("w", "x", 2)
    kr.delete_password("s", "k")
    with pytest.raises(PasswordDeleteError):
        kr.delete_password("s", "k")
    assert not MemoryKeyring.viable and not DaemonKeyring.viable
    assert not {MemoryKeyring, DaemonKeyring} & {type(k) for k in get_all_keyring()}


PROC_READS = """
import ctypes, json, os, resource, sys, time  # loaded first: an ordinary user may not read this Python's files
from ssocred.adapters.memory_guard import protect
if os.getuid() == 0:  # act as an ordinary user: root may read any process
    os.setgid(65534)
    os.setuid(65534)
ready_r, ready_w = os.pipe()
pid = os.fork()
if pid == 0:
    notes = protect()
    os.write(ready_w, json.dumps(notes).encode())
    time.sleep(60)
    os._exit(0)
os.close(ready_w)  # a child that fails ends the read below
notes = json.loads(os.read(ready_r, 65536))
readable = {}
for name in ("status", "stat", "cmdline", "limits", "environ", "mem", "fd"):
    path = f"/proc/{pid}/{name}"
    try:
        os.listdir(path) if name == "fd" else open(path, "rb").close()
        readable[name] = True
    except PermissionError:
        readable[name] = False
status = open(f"/proc/{pid}/status").read()
locked = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmLck:")))
os.kill(pid, 9)
print(json.dumps({"notes": notes, "readable": readable, "locked": locked}))
"""


@pytest.mark.slow
def test_protected_memory_keeps_what_ssocred_reads_under_proc_and_hides_the_rest() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    r = subprocess.run([sys.executable, "-c", PROC_READS], capture_output=True, text=True, timeout=60, env=env,
                       check=False)
    assert r.returncode == 0, r.stderr
    found = json.loads(r.stdout)
    # What ssocred, its tests and its benchmarks read of a daemon stays readable; its memory does not.
    assert found["readable"] == {"status": True, "stat": True, "cmdline": True, "limits": True,
                                 "environ": False, "mem": False, "fd": False}
    if found["locked"] == 0:  # not allowed to lock (an ordinary user's 8 MiB limit): said in one line
        assert len(found["notes"]) == 1 and "swap may hold the secrets" in found["notes"][0]
        assert "ulimit -l unlimited" in found["notes"][0] and "LimitMEMLOCK=infinity" in found["notes"][0]
    else:
        assert found["notes"] == []
