"""The daemon's socket: ``ssocred process`` answered over it byte for byte, safely, or not at all.

Servers are real ``python -m ssocred.daemon.server`` processes, clients the real ``ssocred``
command, the keyring a real Secret Service and the portal the emulator over HTTP.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

import pytest

from ssocred import socket_protocol
from ssocred.adapters.store import Store
from ssocred.errors import EXIT_ACCESS_DENIED, EXIT_LOGIN_REQUIRED
from ssocred.process import client
from tests.support.cli import (
    ACCOUNT,
    OTHER_ACCOUNT,
    ROLE,
    age_last_request,
    login,
    session_config,
    ssocred_argv,
    write_config,
)
from tests.support.emulator import RunningEmulator

REPO = Path(__file__).resolve().parents[1]
ARGS = ("process", "--sso-session", "corp", "--account-id", ACCOUNT, "--role-name", ROLE)
#: Every ssocred module the daemon-answered ``ssocred process`` loads.
HOT_PATH = {"ssocred", "ssocred.__main__", "ssocred.process", "ssocred.process.client", "ssocred.process_args",
            "ssocred.socket_protocol"}
SERVER = (sys.executable, "-m", "ssocred.daemon.server", "--verbose")
#: Stands in for systemd: takes the passed socket to fd 3 and names itself in LISTEN_PID.
ACTIVATED = """
import os, sys
os.dup2(int(os.environ.pop("TEST_SOCKET_FD")), 3)
os.environ["LISTEN_PID"] = str(os.getpid())
from ssocred.daemon.server import main
sys.exit(main(["--verbose"]))
"""
START_TIMEOUT = 60.0


class Server:
    """A socket server subprocess; its log (stderr) goes to a file."""

    def __init__(self, log: Path, argv: Sequence[str] = SERVER, pass_fds: Sequence[int] = (),
                 env: dict[str, str] | None = None) -> None:
        self.log_path = log
        with log.open("ab") as err:
            self.proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                                         text=True, env=_server_env(env), pass_fds=tuple(pass_fds))
        assert self.proc.stdout is not None
        stdout: IO[str] = self.proc.stdout
        ready, _, _ = select.select([stdout], [], [], START_TIMEOUT)
        line = stdout.readline() if ready else ""
        if not line:
            self.stop()
            raise AssertionError(f"the server did not start: {self.log()}")
        self.path: str = json.loads(line)["socket"]

    def log(self) -> str:
        """Everything the server logged so far."""
        return self.log_path.read_text(errors="replace")

    def answered(self, account: str = ACCOUNT, role: str = ROLE) -> int:
        """How many requests for ``role`` in ``account`` this server answered itself."""
        return self.log().count(f"answered corp {account} {role}: exit")

    def kill(self) -> None:
        """SIGKILL, as a crash would: the socket file stays behind."""
        self.proc.kill()
        self.proc.wait(30)

    def stop(self) -> None:
        """SIGTERM and wait; the server removes its socket."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        if self.proc.stdout:
            self.proc.stdout.close()


def _server_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: the test's) with this checkout importable."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


@pytest.fixture
def server(sso: RunningEmulator, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start socket servers (``server()``) for this test; all are stopped afterwards."""
    started: list[Server] = []

    def launch(argv: Sequence[str] = SERVER, pass_fds: Sequence[int] = (), env: dict[str, str] | None = None) -> Server:
        s = Server(tmp_path / f"server-{len(started)}.log", argv, pass_fds, env)
        started.append(s)
        return s

    yield launch
    for s in started:
        s.stop()


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """``ssocred ARGS`` with bytes output, to compare exactly, and no terminal to prompt on."""
    return subprocess.run([*ssocred_argv(), *args], capture_output=True, env=env, timeout=120, check=False,
                          start_new_session=True)


def _process_ok(*extra: str) -> bytes:
    r = run(*ARGS, *extra)
    assert r.returncode == 0 and r.stderr == b"", r.stderr
    return r.stdout


@pytest.mark.slow
def test_answers_are_byte_identical(server: Callable[..., Server], tmp_path: Path) -> None:
    write_config(session_config("corp") + "[profile keys]\nssocred_session = corp\n"
                 f"ssocred_account_id = {OTHER_ACCOUNT}\nssocred_role_name = ReadOnlyAccess\n")
    login()
    denied = ("process", "--sso-session", "corp", "--account-id", OTHER_ACCOUNT, "--role-name", "AdministratorAccess")
    by_keys = ("process", "--profile", "keys")
    _process_ok()  # fetch and cache
    alone = {args: run(*args) for args in (ARGS, denied, by_keys)}
    # The server reads the client's config file, not its own.
    srv = server(env={**os.environ, "AWS_CONFIG_FILE": str(tmp_path / "missing")})
    served = {args: run(*args) for args in (ARGS, denied, by_keys)}
    assert srv.answered() == 1 and srv.answered(OTHER_ACCOUNT, "AdministratorAccess") == 1
    assert srv.answered(OTHER_ACCOUNT, "ReadOnlyAccess") == 1
    for args, r in served.items():
        assert (r.returncode, r.stdout, r.stderr) == (alone[args].returncode, alone[args].stdout, alone[args].stderr)
    assert alone[denied].returncode == EXIT_ACCESS_DENIED and alone[denied].stdout == b""
    assert json.loads(served[ARGS].stdout)["AccountId"] == ACCOUNT
    srv.stop()
    assert _process_ok() == served[ARGS].stdout
    assert "SecretAccessKey" not in srv.log() and json.loads(served[ARGS].stdout)["SessionToken"] not in srv.log()


@pytest.mark.slow
def test_fast_path_imports_next_to_nothing(server: Callable[..., Server]) -> None:
    login()
    _process_ok()
    srv = server()
    r = subprocess.run([*ssocred_argv(), *ARGS], capture_output=True, text=True, timeout=120, check=False,
                       env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"})
    assert r.returncode == 0, r.stderr
    assert srv.answered() == 1
    imported = {line.split("|")[-1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")}
    # An allow-list: a daemon-answered call may load these ssocred modules and nothing else of ours.
    assert {m for m in imported if m.split(".")[0] == "ssocred"} == HOT_PATH
    assert not imported & {"keyring", "boto3", "botocore", "json", "socket", "selectors", "argparse", "typing"}


@pytest.mark.slow
def test_another_uid_is_refused(server: Callable[..., Server], monkeypatch: pytest.MonkeyPatch) -> None:
    if os.getuid() != 0:
        pytest.skip("acting as another user needs root")
    nobody = pwd.getpwnam("nobody")
    login()
    _process_ok()
    # A directory and socket anyone may reach: the uid check alone must keep them out.
    shared = Path(tempfile.mkdtemp(prefix="ssocred-uid-"))
    try:
        monkeypatch.setenv("SSOCRED_RUNTIME_DIR", str(shared / "run"))
        srv = server()
        for p in (shared, shared / "run"):
            p.chmod(0o755)
        Path(srv.path).chmod(0o666)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the client, as nobody; it falls back when refused, and that must fail too
            code = 98
            try:
                os.close(read)
                os.dup2(write, 1)
                os.dup2(write, 2)
                sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - pytest swapped them
                sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
                os.setgroups([])
                os.setgid(nobody.pw_gid)
                os.setuid(nobody.pw_uid)
                # Straight at the socket: the server's own uid check must refuse it.
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
                    raw.connect(srv.path)
                    # The server refuses before it reads, so it may have hung up before this write.
                    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                        raw.sendall(socket_protocol.request_line(list(ARGS[1:])).encode())
                        raw.shutdown(socket.SHUT_WR)
                    reply = raw.recv(65536)
                answered = client.run(list(ARGS[1:]))  # the client itself does not trust this directory
                if not reply.startswith(b"%d " % socket_protocol.FALLBACK):
                    code = 97
                elif answered is not None:
                    code = 200 + answered
                else:
                    from ssocred.process.local import main as process_main

                    code = process_main(list(ARGS[1:]))
            except BaseException:
                import traceback

                traceback.print_exc()  # shown by the assertion below, instead of a bare exit code
            finally:
                sys.stderr.flush()
                os._exit(code)
        os.close(write)
        with os.fdopen(read, "rb") as pipe:
            output = pipe.read()
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        assert 0 < code < 98, (code, output)  # refused, fell back, and the fallback failed on its own
        assert output.startswith(b"ssocred: ") and b"Secret" not in output and b"ASIA" not in output
        assert f"refused a connection from uid {nobody.pw_uid}" in srv.log()
        assert srv.answered() == 0
        for p in (shared, shared / "run"):
            p.chmod(0o700)
        assert _process_ok() and srv.answered() == 1  # its own user is still served
    finally:
        shutil.rmtree(shared, ignore_errors=True)


@pytest.mark.slow
def test_stale_socket_is_replaced_and_a_live_one_kept(server: Callable[..., Server]) -> None:
    login()
    expected = _process_ok()
    crashed = server()
    crashed.kill()
    assert stat.S_ISSOCK(os.lstat(crashed.path).st_mode)  # left behind
    assert _process_ok() == expected  # nobody listens: the client falls back
    fresh = server()
    assert "replaced the stale socket" in fresh.log()
    assert _process_ok() == expected and fresh.answered() == 1
    second = subprocess.run(SERVER, capture_output=True, text=True, timeout=120, check=False, env=_server_env())
    assert second.returncode != 0 and "another ssocred daemon answers on" in second.stderr
    assert _process_ok() == expected and fresh.answered() == 2


@pytest.mark.slow
def test_server_restarting_mid_loop_fails_no_client(server: Callable[..., Server]) -> None:
    login()
    expected = _process_ok()
    servers = [server()]
    for i in range(30):
        client = subprocess.Popen([*ssocred_argv(), *ARGS], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if i % 6 == 2:
            if i % 12 == 2:
                servers[-1].kill()
            else:
                servers[-1].stop()
        elif i % 6 == 4:
            servers.append(server())
        out, err = client.communicate(timeout=120)
        assert (client.returncode, out, err) == (0, expected, b""), i
    assert len(servers) == 6 and sum(s.answered() for s in servers) > 0


@pytest.mark.slow
def test_32_parallel_clients_fetch_once(sso: RunningEmulator, server: Callable[..., Server]) -> None:
    login()
    srv = server()
    warm = run("process", "--sso-session", "corp", "--account-id", ACCOUNT, "--role-name", "AdministratorAccess")
    assert warm.returncode == 0, warm.stderr  # the server has its portal client ready: no 30 s reply wait
    sso.reset()
    clients = [subprocess.Popen([*ssocred_argv(), *ARGS], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for _ in range(32)]
    outs = [c.communicate(timeout=300) for c in clients]
    assert [(c.returncode, err) for c, (_, err) in zip(clients, outs, strict=True)] == [(0, b"")] * 32
    assert len({out for out, _ in outs}) == 1
    assert sso.stats()["operations"]["GetRoleCredentials"] == 1
    assert srv.answered() == 32


@pytest.mark.slow
def test_socket_activation(server: Callable[..., Server]) -> None:
    login()
    expected = _process_ok()
    path = socket_protocol.socket_path()
    Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with listener:
        listener.bind(path)
        listener.listen(16)
        env = {**os.environ, "LISTEN_FDS": "1", "TEST_SOCKET_FD": str(listener.fileno())}
        srv = server(argv=(sys.executable, "-c", ACTIVATED), pass_fds=(listener.fileno(),), env=env)
        assert srv.path == path and "(socket activation)" in srv.log()
        assert _process_ok() == expected and srv.answered() == 1
        srv.stop()
        assert stat.S_ISSOCK(os.lstat(path).st_mode)  # systemd's socket outlives the service


@pytest.mark.slow
def test_use_is_recorded_and_a_logout_seen(server: Callable[..., Server]) -> None:
    login()
    _process_ok()
    store = Store()
    # Use is recorded when the last record is older than credentials.USE_RECORD_INTERVAL.
    fetched = age_last_request("corp", ACCOUNT, ROLE, 3600)
    assert _last_requested(store) == fetched
    srv = server()
    _process_ok()
    deadline = time.monotonic() + 30
    while _last_requested(store) == fetched and time.monotonic() < deadline:
        time.sleep(0.05)  # recorded after the reply is sent
    touched = _last_requested(store)
    assert touched > fetched
    _process_ok()
    assert srv.answered() == 2 and _last_requested(store) == touched  # not again right away
    assert run("logout").returncode == 0
    alone = run(*ARGS, env={**os.environ, "SSOCRED_RUNTIME_DIR": str(Path(srv.path).parent / "elsewhere")})
    served = run(*ARGS)
    assert srv.answered() == 3 and alone.returncode == EXIT_LOGIN_REQUIRED
    assert (served.returncode, served.stdout, served.stderr) == (alone.returncode, b"", alone.stderr)


def _last_requested(store: Store) -> float:
    entry = store.index().find_creds("corp", ACCOUNT, ROLE)
    assert entry is not None
    return entry.last_requested_at


@pytest.mark.slow
def test_requests_the_client_must_run(server: Callable[..., Server]) -> None:
    srv = server()
    # Not logged in, with --login: the login belongs on the client's terminal, which has none here.
    r = run(*ARGS, "--login")
    assert r.returncode == EXIT_LOGIN_REQUIRED and b"no terminal" in r.stderr
    assert "a login is needed, on the client's terminal" in srv.log()
    login()
    expected = _process_ok()
    other = run(*ARGS, env={**os.environ, "SSOCRED_KEYRING_SERVICE": "ssocred-test-elsewhere"})
    assert other.returncode == EXIT_LOGIN_REQUIRED  # its own keyring service has no session
    assert "the client uses another keyring service or backend" in srv.log()
    help_text = run("process", "--help")
    assert help_text.returncode == 0 and help_text.stdout.startswith(b"usage: ssocred process")
    assert srv.answered() == 1 and _process_ok() == expected


@pytest.mark.slow
@pytest.mark.parametrize("request_line", [
    b"not json\n",
    b'{"v": 2, "argv": []}\n',
    b"[1, 2]\n",
    b'{"v": 1, "argv": "--profile dev", "config": "/c", "service": "s", "cwd": "/"}\n',
    b"\xff\xfe\n",
])
def test_bad_requests_do_not_hurt_the_server(server: Callable[..., Server], request_line: bytes) -> None:
    srv = server()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(30)
        conn.connect(srv.path)
        conn.sendall(request_line)
        reply = conn.makefile("rb").read()
    assert reply.startswith(b"-1 ") and socket_protocol.parse_reply(reply) is None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(srv.path)  # and one that hangs up without a word
    login()
    assert _process_ok() and srv.answered() == 1


def test_request_line_is_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/h")
    monkeypatch.setenv("AWS_CONFIG_FILE", "~/$SUB/config")
    monkeypatch.setenv("SUB", "aws dir")
    monkeypatch.setenv("SSOCRED_KEYRING_SERVICE", "svc")
    argv = ["--profile", 'a "quoted" \\ name\twith\ncontrols\x7f and ünïcödé', "--login"]
    line = socket_protocol.request_line(argv)
    assert line.endswith("}\n") and line.count("\n") == 1
    req = json.loads(line)
    assert req["v"] == socket_protocol.PROTOCOL_VERSION and req["argv"] == argv
    assert (req["config"], req["service"], req["cwd"]) == ("/home/h/aws dir/config", "svc", os.getcwd())
    assert req["backend"] == os.environ.get("PYTHON_KEYRING_BACKEND", "")


def test_only_plain_arguments_take_the_fast_path() -> None:
    assert client.plain_arguments(["--profile", "dev"])
    assert client.plain_arguments(["--sso-session=corp", "--account-id", ACCOUNT, "--role-name", "R", "--login"])
    assert client.plain_arguments(["--sso-session", "corp", "--account-id", ACCOUNT, "--role-name=-Admin"])
    # Everything the grammar refuses goes to the full path, which prints the one-line usage error.
    for argv in (["--help"], ["-h"], ["--profile"], ["--bogus"], ["--profile", "dev", "extra"],
                 ["--profile", "dev", "--"], ["--profile", "a", "--profile", "b"], ["--profile", "--login"],
                 ["--sso-session", "corp", "--account-id", ACCOUNT, "--role-name", "--login"],
                 ["--sso-session", "corp", "--account-id", "1", "--role-name", "R"]):
        assert not client.plain_arguments(argv), argv


def test_replies_are_taken_whole_or_not_at_all() -> None:
    assert socket_protocol.parse_reply(b"0 3\n{}\n") == (0, b"{}\n")
    assert socket_protocol.parse_reply(b"4 9\nssocred: \n") is None  # cut short
    assert socket_protocol.parse_reply(b"-1 5\nwhy?\n") is None
    assert socket_protocol.parse_reply(b"0 3") is None and socket_protocol.parse_reply(b"") is None


@pytest.mark.slow
@pytest.mark.parametrize("mode", [0o755, 0o700])
def test_client_trusts_only_a_private_runtime_dir(sso: RunningEmulator, tmp_path: Path, mode: int) -> None:
    import threading

    rundir_path = tmp_path / "shared-run"
    rundir_path.mkdir()
    rundir_path.chmod(mode)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(rundir_path / "daemon.sock"))
    listener.listen(8)
    listener.settimeout(30)
    accepted: list[bytes] = []

    def serve() -> None:  # a stranger's "daemon": it reads the request and hangs up
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(5)
            accepted.append(conn.recv(65536))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        r = run(*ARGS, env=dict(os.environ, SSOCRED_RUNTIME_DIR=str(rundir_path)))
        assert r.returncode == EXIT_LOGIN_REQUIRED  # answered by the client itself: not logged in
        if mode == 0o700:
            thread.join(30)
            assert accepted and accepted[0].startswith(b'{"v": 2')  # a private dir's socket is asked
        else:
            assert not accepted  # a directory others can write is never trusted
    finally:
        listener.close()
        thread.join(5)
