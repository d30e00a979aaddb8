"""``ssocred forward``: a remote host uses this machine's daemon through a socket forwarded by real ``ssh -R``.

Two homes on one machine: the "laptop" (real Secret Service, logged in, a running daemon) and the
"remote" (no D-Bus, no usable keyring, its own HOME, state, runtime and config). A real OpenSSH
server on 127.0.0.1 carries the forward, started by ``ssocred forward`` itself. Without sshd the
end-to-end tests skip, unless ``SSOCRED_REQUIRE_SSH=1`` (set in CI), which makes them fail instead.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ssocred import socket_protocol
from ssocred.errors import EXIT_ACCESS_DENIED, EXIT_STORE, EXIT_USAGE, UsageError
from ssocred.model.forward import ANY, Forward, Rule, name_for_host, parse_rule, parse_rules, ssh_command, ssh_config
from tests.support.cli import ACCOUNT, OTHER_ACCOUNT, ROLE, START_URL, run, session_config, ssocred_argv, ssocred_line
from tests.support.daemon import RunningDaemon, start_daemon
from tests.support.emulator import RunningEmulator

REQUIRE_ENV = "SSOCRED_REQUIRE_SSH"
SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)
SSH_KEYGEN = shutil.which("ssh-keygen")


# --- pure parts ---------------------------------------------------------------------------------------


def test_allow_rules_cover_exactly_what_they_name() -> None:
    fwd = Forward("box", parse_rules([f"{ACCOUNT}:{ROLE}", f"{ANY}:Viewer", OTHER_ACCOUNT]))
    assert fwd.allows(ACCOUNT, ROLE)
    assert not fwd.allows(ACCOUNT, "AdministratorAccess")
    assert fwd.allows("333333333333", "Viewer")
    assert fwd.allows(OTHER_ACCOUNT, "AnyRole")
    assert not Forward("none", ()).allows(ACCOUNT, ROLE)
    assert parse_rule("*") == Rule(ANY, ANY)
    assert [str(r) for r in fwd.rules] == [f"{ACCOUNT}:{ROLE}", "*:Viewer", OTHER_ACCOUNT]


@pytest.mark.parametrize("text", ["1234", "abc:Role", f"{ACCOUNT}:bad role", ""])
def test_a_bad_allow_rule_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_rule(text)
    assert caught.value.exit_code == EXIT_USAGE and "ACCOUNT[:ROLE]" in caught.value.message


def test_an_account_with_an_empty_role_allows_every_role_of_it() -> None:
    assert parse_rule(f"{ACCOUNT}:") == Rule(ACCOUNT, ANY)


def test_forward_names_come_from_the_host() -> None:
    assert name_for_host("me@build.example.com") == "build.example.com"
    assert name_for_host("a b/c") == "a-b-c"


def test_the_ssh_lines_are_what_openssh_reads(tmp_path: Path) -> None:
    argv = ssh_command("me@box", "/run/user/1/ssocred/forward/box.sock", extra=["-p", "2222"])
    assert argv[-1] == "me@box" and "-R" in argv
    assert argv[argv.index("-R") + 1] == "/tmp/ssocred-%r.sock:/run/user/1/ssocred/forward/box.sock"
    if shutil.which("ssh") is None:
        pytest.skip("no ssh client to read the configuration")
    config = tmp_path / "ssh_config"
    config.write_text(ssh_config("me@box", "/run/user/1/ssocred/forward/box.sock"))
    shown = subprocess.run(["ssh", "-G", "-F", str(config), "me@box"], capture_output=True, text=True, check=True)
    settings = shown.stdout.lower().splitlines()
    assert "remoteforward /tmp/ssocred-me.sock /run/user/1/ssocred/forward/box.sock" in settings
    assert "streamlocalbindunlink yes" in settings and "exitonforwardfailure yes" in settings


def test_the_forwarded_socket_defaults_to_tmp_under_the_users_name() -> None:
    assert socket_protocol.forwarded_socket_path("me") == "/tmp/ssocred-me.sock"


def _listening(path: Path, mode: int) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    os.chmod(path, mode)
    return sock


def test_only_a_private_socket_of_this_user_counts_as_forwarded(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    good = _listening(private / "good.sock", 0o600)
    loose = _listening(private / "loose.sock", 0o666)
    (private / "file.sock").write_text("")
    os.chmod(private / "file.sock", 0o600)
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    os.chmod(open_dir, 0o777)  # writable by all and not sticky: anyone could have swapped the socket in
    swapped = _listening(open_dir / "s.sock", 0o600)
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    os.chmod(sticky, 0o1777)  # /tmp: only the owner of an entry can replace it
    in_tmp = _listening(sticky / "s.sock", 0o600)
    try:
        assert socket_protocol.own_socket(str(private / "good.sock"))
        assert socket_protocol.own_socket(str(sticky / "s.sock"))
        assert not socket_protocol.own_socket(str(private / "loose.sock"))
        assert not socket_protocol.own_socket(str(private / "file.sock"))
        assert not socket_protocol.own_socket(str(open_dir / "s.sock"))
        assert not socket_protocol.own_socket(str(private / "missing.sock"))
    finally:
        for sock in (good, loose, swapped, in_tmp):
            sock.close()


# --- a real forward over ssh -------------------------------------------------------------------------


def _require_sshd() -> str:
    if SSHD is None or SSH_KEYGEN is None or shutil.which("ssh") is None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"OpenSSH (sshd, ssh, ssh-keygen) is missing and {REQUIRE_ENV}=1")
        pytest.skip("OpenSSH server not installed (apt install openssh-server)")
    return str(SSHD)


class SshServer:
    """A real sshd on 127.0.0.1 for this user only, with a throw-away host key and client key."""

    def __init__(self, tmp: Path) -> None:
        sshd = _require_sshd()
        self.dir = tmp / "sshd"
        self.dir.mkdir(mode=0o700)
        self.key = self.dir / "client_key"
        for key in (self.dir / "host_key", self.key):
            subprocess.run([str(SSH_KEYGEN), "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        (self.dir / "authorized_keys").write_text(self.key.with_suffix(".pub").read_text())
        if os.getuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation directory
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        config = self.dir / "sshd_config"
        config.write_text("\n".join([
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {self.dir / 'host_key'}",
            f"AuthorizedKeysFile {self.dir / 'authorized_keys'}", f"PidFile {self.dir / 'sshd.pid'}",
            "UsePAM no", "StrictModes no", "PermitRootLogin prohibit-password", "PasswordAuthentication no",
            "KbdInteractiveAuthentication no", "AllowStreamLocalForwarding yes", "StreamLocalBindUnlink yes",
            "LogLevel VERBOSE", ""]))
        self.log = (self.dir / "sshd.log").open("w")
        self.proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(config)], stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 20
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("sshd did not start: " + (self.dir / "sshd.log").read_text()[-2000:])
            time.sleep(0.05)

    def client_args(self) -> list[str]:
        """What ``ssh`` needs to reach this server without any file of the user's."""
        return ["-F", "/dev/null", "-p", str(self.port), "-i", str(self.key), "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                "-N"]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[SshServer]:
    server = SshServer(tmp_path)
    yield server
    server.stop()


def _remote_env(tmp: Path, forwarded: Path) -> dict[str, str]:
    """A host with no D-Bus and no usable keyring, its own files everywhere, the forwarded socket at ``forwarded``."""
    root = tmp / "remote"
    home = root / "home"
    (home / ".aws").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SSOCRED_", "DBUS_", "XDG_"))}
    env.update({
        "HOME": str(home), "AWS_CONFIG_FILE": str(home / ".aws" / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / ".aws" / "credentials"),
        "SSOCRED_STATE_DIR": str(root / "state"), "SSOCRED_RUNTIME_DIR": str(root / "run"),
        "SSOCRED_LOG_DIR": str(root / "log"), "XDG_CONFIG_HOME": str(root / "config"),
        # Autostart asked for: a forwarded daemon must still keep this host from starting its own.
        "XDG_CACHE_HOME": str(root / "cache"), "SSOCRED_AUTOSTART": "1",
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        "SSOCRED_FORWARD_SOCKET": str(forwarded), "SSOCRED_KEYRING_SERVICE": "ssocred-remote",
    })
    (home / ".aws" / "config").write_text(
        session_config("corp")
        + f"[profile dev]\nssocred_session = corp\nssocred_account_id = {ACCOUNT}\nssocred_role_name = {ROLE}\n"
        + f"credential_process = {ssocred_line()} process --profile dev\nregion = us-east-1\n")
    return env


def _wait_for(path: Path, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while not (path.exists() and stat.S_ISSOCK(path.lstat().st_mode)):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"ssh did not set up the forward: {log.read_text()[-2000:]}")
        time.sleep(0.05)


@pytest.fixture
def laptop(logged_in: object, tmp_path: Path, daemons: list[RunningDaemon]) -> RunningDaemon:
    """The laptop: logged in to corp, a daemon running, a forward 'remote' allowing one role."""
    daemon = start_daemon(daemons, tmp_path, "--verbose")
    added = run("forward", "127.0.0.1", "--name", "remote", "--allow", f"{ACCOUNT}:{ROLE}", "--allow", OTHER_ACCOUNT,
                "--json")
    assert added.returncode == 0, added.stderr
    data = json.loads(added.stdout)
    assert data["daemon_listening"] and data["allow"] == [f"{ACCOUNT}:{ROLE}", OTHER_ACCOUNT]
    return daemon


def _secrets(laptop_creds: dict[str, str]) -> list[str]:
    from ssocred.adapters.store import Store

    token = Store().load_session("corp")
    assert token is not None and token.registration is not None and token.refresh_token
    return [token.access_token, token.refresh_token, token.registration.client_secret,
            laptop_creds["SecretAccessKey"], laptop_creds["SessionToken"]]


def _files_holding(root: Path, secrets: list[str]) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            found += [f"{path}: secret #{i}" for i, s in enumerate(secrets) if s.encode() in data]
    return found


@pytest.mark.slow
def test_a_remote_host_gets_credentials_through_ssh_and_keeps_no_secret(
    laptop: RunningDaemon, sso: RunningEmulator, sshd: SshServer, tmp_path: Path
) -> None:
    forwarded = tmp_path / "remote" / "run-forward" / "ssocred.sock"
    forwarded.parent.mkdir(parents=True, mode=0o700)
    remote = _remote_env(tmp_path, forwarded)
    ssh_log = tmp_path / "ssh.log"
    with ssh_log.open("wb") as log:
        # ssocred forward itself runs ssh (exec), with the test server's settings after --.
        ssh = subprocess.Popen([*ssocred_argv(), "forward", "127.0.0.1", "--name", "remote", "--remote-socket",
                                str(forwarded), "--", *sshd.client_args()], stdout=log, stderr=log)
    try:
        _wait_for(forwarded, ssh, ssh_log)
        assert b"forwarding 'remote'" in ssh_log.read_bytes()

        # The remote host has no keyring: alone, it cannot do anything.
        alone = run("process", "--sso-session", "corp", "--account-id", ACCOUNT, "--role-name", ROLE,
                    env={**remote, "SSOCRED_FORWARD_SOCKET": str(tmp_path / "nothing.sock"), "SSOCRED_AUTOSTART": "0"})
        assert alone.returncode == EXIT_STORE, alone.stderr
        assert alone.stderr.count("\n") == 1
        assert "ssocred daemon --store memory" in alone.stderr and "ssocred forward" in alone.stderr

        by_args = run("process", "--sso-session", "corp", "--account-id", ACCOUNT, "--role-name", ROLE, env=remote)
        assert by_args.returncode == 0, by_args.stderr
        creds = json.loads(by_args.stdout)
        mine = run("process", "--sso-session", "corp", "--account-id", ACCOUNT, "--role-name", ROLE)
        assert json.loads(mine.stdout)["AccessKeyId"] == creds["AccessKeyId"]  # the laptop's cached role

        # A remote-side profile, read by a real SDK through credential_process on the remote host.
        code = ("import boto3, json; s = boto3.Session(profile_name='dev'); "
                "print(json.dumps(s.client('sts').get_caller_identity()))")
        sdk = subprocess.run([sys.executable, "-c", code], env=remote, capture_output=True, text=True, timeout=120)
        assert sdk.returncode == 0, sdk.stderr
        assert json.loads(sdk.stdout)["Account"] == ACCOUNT
        env = run("env", "--profile", "dev", "--format", "json", env=remote)
        assert env.returncode == 0, env.stderr
        assert json.loads(env.stdout)["AWS_ACCESS_KEY_ID"] == creds["AccessKeyId"]

        ran = run("exec", "--profile", "dev", "--", sys.executable, "-c",
                  "import os; print(os.environ['AWS_ACCESS_KEY_ID'])", env=remote)
        assert ran.returncode == 0 and ran.stdout.strip() == creds["AccessKeyId"], ran.stderr
        link = run("console", "--profile", "dev", "--print", env={**remote, "AWS_ENDPOINT_URL_SIGNIN": sso.url})
        assert link.returncode == 0, link.stderr
        assert link.stdout.startswith(f"{sso.url}/federation?") and "SigninToken=" in link.stdout

        # A burst of remote callers for a role nobody fetched yet: every one answered, one fetch on the laptop.
        before = sso.stats()["operations"]["GetRoleCredentials"]
        other = ["process", "--sso-session", "corp", "--account-id", OTHER_ACCOUNT, "--role-name", ROLE]
        burst = [subprocess.Popen([*ssocred_argv(), *other], env=remote, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for _ in range(16)]
        answers = [p.communicate(timeout=120) for p in burst]
        assert [p.returncode for p in burst] == [0] * 16, [err for _, err in answers]
        assert len({json.loads(out)["AccessKeyId"] for out, _ in answers}) == 1
        assert sso.stats()["operations"]["GetRoleCredentials"] == before + 1

        # A role outside the allow-list: one line, access denied, nothing fetched.
        before = sso.stats()["operations"]["GetRoleCredentials"]
        denied = run("process", "--sso-session", "corp", "--account-id", ACCOUNT, "--role-name",
                     "AdministratorAccess", env=remote)
        assert denied.returncode == EXIT_ACCESS_DENIED
        assert denied.stderr.count("\n") == 1 and "does not allow role AdministratorAccess" in denied.stderr
        assert "--allow 111111111111:AdministratorAccess" in denied.stderr
        assert sso.stats()["operations"]["GetRoleCredentials"] == before

        log_text = laptop.log_path.read_text()
        assert "forward remote: answered role ReadOnlyAccess in 111111111111 of session corp to pid" in log_text
        assert "ssh" in log_text.split("forward remote: answered", 1)[1].splitlines()[0]  # the peer is named
        assert "forward remote: refused role AdministratorAccess" in log_text
        shown = json.loads(run("status", "--json", env=remote).stdout)
        assert shown["forwarded_socket"] == str(forwarded)
        assert "daemon forwarded to this host" in run("status", env=remote).stdout
        assert [f["name"] for f in json.loads(run("status", "--json").stdout)["forwards"]] == ["remote"]
        assert not list((tmp_path / "remote").rglob("daemon.sock"))  # no daemon was started on the remote host
        leaked = _files_holding(tmp_path / "remote", _secrets(creds))
        assert leaked == []
        assert not any(s in log_text for s in _secrets(creds))
    finally:
        ssh.send_signal(signal.SIGTERM)
        ssh.wait(10)


def test_a_session_the_daemon_does_not_hold_and_a_foreign_request_are_refused(
    laptop: RunningDaemon, tmp_path: Path
) -> None:
    from ssocred.adapters import forwards

    local = forwards.socket_path("remote")
    remote = _remote_env(tmp_path, Path(local))  # the socket itself stands in for its forwarded end
    config = Path(remote["AWS_CONFIG_FILE"])
    config.write_text(config.read_text().replace(START_URL, "https://d-9999999999.awsapps.com/start"))
    # A profile's session is matched by its start URL (a role named by arguments, by the session's name).
    other = run("process", "--profile", "dev", env=remote)
    assert other.returncode == 1 and "holds no session for https://d-9999999999" in other.stderr
    assert other.stderr.count("\n") == 1
    # Not a role request (an old client, or someone probing): refused, nothing else said.
    answer = socket_protocol.exchange(b'{"v": 2, "argv": ["--profile", "dev"], "config": "/etc/passwd"}\n', local)
    assert answer is not None and answer[0] == EXIT_USAGE
    assert b"role requests only" in answer[1]


def test_a_forwarded_daemon_keeps_this_host_from_autostarting_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ssocred.usecases import autostart

    here = tmp_path / "private"
    here.mkdir(mode=0o700)
    monkeypatch.setenv("SSOCRED_AUTOSTART", "1")
    monkeypatch.setenv("SSOCRED_FORWARD_SOCKET", str(here / "forwarded.sock"))
    assert autostart.decision()[1] != "a daemon is forwarded to this host (ssocred forward)"
    with _listening(here / "forwarded.sock", 0o600):
        assert autostart.decision() == (False, "a daemon is forwarded to this host (ssocred forward)")


def test_forwards_are_listed_changed_and_removed(laptop: RunningDaemon) -> None:
    from ssocred.adapters import forwards

    listed = json.loads(run("forward", "--list", "--json").stdout)
    assert [f["name"] for f in listed["forwards"]] == ["remote"]
    assert os.path.exists(forwards.socket_path("remote"))
    assert stat.S_IMODE(os.stat(forwards.socket_path("remote")).st_mode) == 0o600
    changed = run("forward", "127.0.0.1", "--name", "remote", "--allow", "*", "--print")
    assert changed.returncode == 0 and "allows *" in changed.stdout and "RemoteForward" in changed.stdout
    assert forwards.load()[0].allows("999999999999", "Anything")
    new = run("forward", "other-host", "--print")
    assert new.returncode == EXIT_USAGE and "--allow" in new.stderr
    removed = run("forward", "--remove", "remote")
    assert removed.returncode == 0 and "Removed forward 'remote'" in removed.stdout
    deadline = time.monotonic() + 10
    while os.path.exists(forwards.socket_path("remote")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(forwards.socket_path("remote"))
    assert json.loads(run("forward", "--list", "--json").stdout) == {"forwards": []}


def test_doctor_status_and_logout_on_a_host_with_a_forwarded_daemon(laptop: RunningDaemon, tmp_path: Path) -> None:
    from ssocred.adapters import forwards

    remote = _remote_env(tmp_path, Path(forwards.socket_path("remote")))  # the socket stands in for its far end
    config = Path(remote["AWS_CONFIG_FILE"])
    config.write_text(config.read_text() + "[profile admin]\nssocred_session = corp\n"
                      f"ssocred_account_id = {ACCOUNT}\nssocred_role_name = AdministratorAccess\n"
                      f"credential_process = {ssocred_line()} process --profile admin\n")
    doctor = run("doctor", "--profile", "dev", "--json", env=remote)
    assert doctor.returncode == 0, doctor.stdout
    checks = {c["id"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert checks["keyring"]["status"] == "skip" and "forwarded to this host" in checks["keyring"]["summary"]
    assert checks["access"]["status"] == "pass" and "answered role ReadOnlyAccess" in checks["access"]["summary"]
    assert checks["daemon"]["status"] == "pass" and checks["service"]["status"] == "skip"
    denied = run("doctor", "--profile", "admin", "--json", env=remote)
    assert denied.returncode == EXIT_ACCESS_DENIED
    access = next(c for c in json.loads(denied.stdout)["checks"] if c["id"] == "access")
    assert access["status"] == "fail" and "does not allow role AdministratorAccess" in access["summary"]

    text = run("status", env=remote).stdout
    assert "daemon forwarded to this host" in text and "not running" not in text
    out = run("logout", "--sso-session", "corp", env=remote)
    assert out.returncode == EXIT_STORE and out.stderr.count("\n") == 1
    assert "keeps no SSO session" in out.stderr and "ssocred logout where that daemon runs" in out.stderr
