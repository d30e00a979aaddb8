"""``ssocred service``: rendered systemd units and launchd plist, dry runs, install/uninstall, contrib files."""

from __future__ import annotations

import json
import os
import plistlib
import re
import shlex
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

from ssocred import socket_protocol
from ssocred.adapters import service_manager
from ssocred.cli import service as service_cli
from tests.support.cli import ACCOUNT, ROLE, session_config, write_config
from tests.support.cli import run as run_ssocred
from tests.support.emulator import RunningEmulator

ROOT = Path(__file__).resolve().parent.parent
CONTRIB = ROOT / "contrib"
COMPLETIONS = CONTRIB / "completions"
COMMANDS = ("login", "logout", "status", "import", "process", "env", "exec", "accounts", "configure", "whoami",
            "discover", "doctor", "emulator", "demo", "daemon", "service")

FAKE_TOOL = """#!/bin/sh
# Records its command line; fails when it contains $FAKE_FAIL; answers the queries ssocred makes.
echo "$(basename "$0") $*" >> "$FAKE_LOG"
if [ -n "${FAKE_FAIL:-}" ]; then
    case " $* " in *" $FAKE_FAIL "*) echo "${FAKE_STDERR:-it failed}" >&2; exit 1 ;; esac
fi
case "$1 $2" in
    "--user is-active") echo active ;;
    "--user is-enabled") echo enabled ;;
    "print gui/"*) printf 'gui/0/com.ssocred.daemon = {\\n\\tstate = running\\n\\tpid = 4242\\n}\\n' ;;
esac
exit 0
"""

SERVICE_UNIT = """\
# systemd user unit for the ssocred daemon, written by `ssocred service install`.
[Unit]
Description=ssocred: keeps AWS IAM Identity Center (AWS SSO) tokens fresh and serves role credentials
Requires=ssocred.socket
After=ssocred.socket

[Service]
Type=notify
NotifyAccess=main
ExecStart={exec_start} daemon
Restart=on-failure
RestartSec=5
WatchdogSec=120
UMask=0077
# The OS keyring is reached over the user's D-Bus session bus.
Environment=DBUS_SESSION_BUS_ADDRESS=unix:path=%t/bus

[Install]
WantedBy=default.target
"""

SOCKET_UNIT = """\
# systemd user socket for the ssocred daemon: the first `ssocred process` call starts it.
[Unit]
Description=ssocred daemon socket

[Socket]
ListenStream=%t/ssocred/daemon.sock
SocketMode=0600
DirectoryMode=0700

[Install]
WantedBy=sockets.target
"""

PLIST = """\
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<!-- launchd agent for the ssocred daemon, written by `ssocred service install`. -->
<plist version="1.0">
<dict>
  <key>Label</key>
  <string>com.ssocred.daemon</string>
  <key>ProgramArguments</key>
  <array>
    <string>{program}</string>
    <string>daemon</string>
  </array>
  <key>RunAtLoad</key>
  <true/>
  <key>KeepAlive</key>
  <dict>
    <key>SuccessfulExit</key>
    <false/>
  </dict>
  <key>ThrottleInterval</key>
  <integer>10</integer>
  <key>ProcessType</key>
  <string>Background</string>
  <key>Umask</key>
  <integer>63</integer>
  <key>StandardOutPath</key>
  <string>{logdir}/daemon.log</string>
  <key>StandardErrorPath</key>
  <string>{logdir}/daemon.log</string>
</dict>
</plist>
"""

#: The first line of an install dry run: where the daemon keeps tokens.
KEYRING_LINE = "# the daemon keeps tokens in the OS keyring: --store keyring\n"
MEMORY_LINE = "# the daemon keeps tokens in its memory only (a restart means a new login): --store memory\n"
#: What --store memory adds to the service unit, at the end of [Service].
MEMORY_LIMIT = """\
# --store memory keeps the tokens in this daemon's memory only. It locks that memory out of swap (mlockall)
# only when the lock limit is unlimited (or at least 2 GiB), so that no later allocation can fail for it.
# systemd lowers this to the hard limit of the user's service manager when that is lower; the daemon then
# logs that swap may hold the tokens.
LimitMEMLOCK=infinity
"""


def memory_unit(exec_start: object) -> str:
    """The service unit of ``install --store memory``: the default one with two changes."""
    unit = SERVICE_UNIT.format(exec_start=exec_start)
    unit = unit.replace(" daemon\n", " daemon --store memory\n")
    return unit.replace("\n\n[Install]", "\n" + MEMORY_LIMIT + "\n[Install]")


@dataclass
class Svc:
    """An isolated HOME, an installed-looking ``ssocred`` and fake systemctl/launchctl on PATH."""

    home: Path
    exe: Path
    fakebin: Path
    log: Path
    monkeypatch: pytest.MonkeyPatch

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def venv(self, where: Path) -> Path:
        """Pretend the interpreter lives in ``where/bin`` with an ``ssocred`` console script beside it."""
        bindir = where / "bin"
        bindir.mkdir(parents=True)
        exe = bindir / "ssocred"
        exe.write_text("#!/bin/sh\nexit 0\n")
        exe.chmod(0o755)
        self.monkeypatch.setattr(sys, "executable", str(bindir / "python"))
        self.exe = exe
        return exe

    def unit(self, name: str) -> Path:
        return self.home / ".config" / "systemd" / "user" / name

    @property
    def plist(self) -> Path:
        return self.home / "Library" / "LaunchAgents" / "com.ssocred.daemon.plist"


def _plain_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No variable that relocates ssocred's files, so the units come out as they do for most users."""
    for name in service_manager.PASS_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def svc(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Svc:
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    fakebin = tmp_path / "fakebin"
    fakebin.mkdir()
    for tool in ("systemctl", "launchctl"):
        (fakebin / tool).write_text(FAKE_TOOL)
        (fakebin / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{fakebin}{os.pathsep}{os.environ['PATH']}")
    log = tmp_path / "calls.log"
    monkeypatch.setenv("FAKE_LOG", str(log))
    monkeypatch.delenv("FAKE_FAIL", raising=False)
    s = Svc(home, Path(), fakebin, log, monkeypatch)
    s.venv(tmp_path / "venv")
    return s


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = service_cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def require(tool: str) -> str:
    """The tool's path; skip without it, or fail when SSOCRED_REQUIRE_SYSTEMD=1 says it must be there."""
    found = shutil.which(tool)
    if found is None:
        if os.environ.get("SSOCRED_REQUIRE_SYSTEMD") == "1":
            pytest.fail(f"{tool} is not installed and SSOCRED_REQUIRE_SYSTEMD=1 (apt-get install systemd)")
        pytest.skip(f"{tool} is not installed (apt-get install systemd)")
    return found


def shell(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed")
    return found


# --- dry runs: the exact output -------------------------------------------------------------


def test_install_dry_run_linux_prints_units_and_commands(svc: Svc, capsys: pytest.CaptureFixture[str]) -> None:
    _plain_env(svc.monkeypatch)
    code, out, err = run(capsys, "install", "--dry-run", "--platform", "linux")
    assert (code, err) == (0, "")
    q = shlex.quote
    assert out == (
        KEYRING_LINE
        + f"cat > {q(str(svc.unit('ssocred.service')))} <<'EOF'\n"
        + SERVICE_UNIT.format(exec_start=svc.exe)
        + "EOF\n"
        + f"cat > {q(str(svc.unit('ssocred.socket')))} <<'EOF'\n"
        + SOCKET_UNIT
        + "EOF\n"
        + "systemctl --user daemon-reload\n"
        + "systemctl --user enable --now ssocred.socket ssocred.service\n"
    )
    assert not (svc.home / ".config").exists()
    assert svc.calls() == []


def test_install_dry_run_darwin_prints_plist_and_commands(svc: Svc, capsys: pytest.CaptureFixture[str]) -> None:
    _plain_env(svc.monkeypatch)
    code, out, err = run(capsys, "install", "--dry-run", "--platform", "darwin")
    assert (code, err) == (0, "")
    logdir = svc.home / "Library" / "Logs" / "ssocred"
    q = shlex.quote
    assert out == (
        KEYRING_LINE
        + f"mkdir -p {q(str(logdir))}\n"
        f"cat > {q(str(svc.plist))} <<'EOF'\n"
        + PLIST.format(program=svc.exe, logdir=logdir)
        + "EOF\n"
        + f"launchctl bootstrap gui/{os.getuid()} {q(str(svc.plist))}\n"
    )
    assert not (svc.home / "Library").exists()
    assert svc.calls() == []


def test_install_dry_run_memory_store_linux(svc: Svc, capsys: pytest.CaptureFixture[str]) -> None:
    _plain_env(svc.monkeypatch)
    code, out, err = run(capsys, "install", "--store", "memory", "--dry-run", "--platform", "linux")
    assert (code, err) == (0, "")
    q = shlex.quote
    assert out == (
        MEMORY_LINE
        + f"cat > {q(str(svc.unit('ssocred.service')))} <<'EOF'\n"
        + memory_unit(svc.exe)
        + "EOF\n"
        + f"cat > {q(str(svc.unit('ssocred.socket')))} <<'EOF'\n"
        + SOCKET_UNIT  # the same socket unit: the memory-store daemon is socket-activated too
        + "EOF\n"
        + "systemctl --user daemon-reload\n"
        + "systemctl --user enable --now ssocred.socket ssocred.service\n"
    )
    assert "--store memory" in out and "LimitMEMLOCK=infinity\n" in out
    assert not (svc.home / ".config").exists()
    assert svc.calls() == []


def test_default_unit_has_no_store_option_and_no_lock_limit(svc: Svc) -> None:
    _plain_env(svc.monkeypatch)
    files = service_manager.rendered("linux")
    assert files == service_manager.rendered("linux", "keyring")
    assert files[svc.unit("ssocred.service")] == SERVICE_UNIT.format(exec_start=svc.exe)
    assert "LimitMEMLOCK" not in files[svc.unit("ssocred.service")]
    assert "--store" not in files[svc.unit("ssocred.service")]
    plist = service_manager.rendered("darwin")[svc.plist]
    assert "--store" not in plist and "MemoryLock" not in plist
    assert plistlib.loads(plist.encode())["ProgramArguments"] == [str(svc.exe), "daemon"]


def test_uninstall_dry_run_lists_the_steps_and_changes_nothing(svc: Svc, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "install", "--platform", "linux")[0] == 0
    before = svc.calls()
    code, out, _ = run(capsys, "uninstall", "--dry-run", "--platform", "linux")
    assert code == 0
    assert out.splitlines() == [
        "systemctl --user disable --now ssocred.socket ssocred.service",
        f"rm -f {svc.unit('ssocred.service')}",
        f"rm -f {svc.unit('ssocred.socket')}",
        "systemctl --user daemon-reload",
    ]
    assert svc.unit("ssocred.service").exists() and svc.calls() == before


def test_dry_run_json_lists_the_steps(svc: Svc, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "install", "--dry-run", "--json", "--platform", "linux")
    data = json.loads(out)
    assert (code, data["action"], data["platform"], data["dry_run"]) == (0, "install", "linux", True)
    assert [s["op"] for s in data["steps"]] == ["write", "write", "run", "run"]
    assert data["steps"][0]["path"] == str(svc.unit("ssocred.service"))
    assert data["steps"][0]["content"] == service_manager.rendered("linux")[svc.unit("ssocred.service")]
    assert data["steps"][3]["argv"] == ["systemctl", "--user", "enable", "--now", "ssocred.socket", "ssocred.service"]
    assert data["store"] == "keyring"


def test_dry_run_json_shows_the_memory_store(svc: Svc, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "install", "--store", "memory", "--dry-run", "--json", "--platform", "linux")
    data = json.loads(out)
    assert (code, data["store"], data["dry_run"]) == (0, "memory", True)
    unit = data["steps"][0]["content"]
    assert unit == service_manager.rendered("linux", "memory")[svc.unit("ssocred.service")]
    assert f"ExecStart={svc.exe} daemon --store memory\n" in unit and "\nLimitMEMLOCK=infinity\n" in unit
    code, out, _ = run(capsys, "install", "--store", "memory", "--dry-run", "--json", "--platform", "darwin")
    data = json.loads(out)
    assert (code, data["store"]) == (0, "memory")
    plist = plistlib.loads(data["steps"][1]["content"].encode())
    assert plist["ProgramArguments"] == [str(svc.exe), "daemon", "--store", "memory"]


# --- rendering -------------------------------------------------------------------------------


def test_relocated_files_are_passed_to_the_daemon(svc: Svc, tmp_path: Path) -> None:
    svc.monkeypatch.setenv("SSOCRED_STATE_DIR", str(tmp_path / 'state "x" 100%'))
    files = service_manager.rendered("linux")
    unit, sock = files[svc.unit("ssocred.service")], files[svc.unit("ssocred.socket")]
    assert f'Environment="SSOCRED_STATE_DIR={tmp_path}/state \\"x\\" 100%%"' in unit
    assert f'Environment="SSOCRED_RUNTIME_DIR={os.environ["SSOCRED_RUNTIME_DIR"]}"' in unit
    assert f'Environment="AWS_CONFIG_FILE={os.environ["AWS_CONFIG_FILE"]}"' in unit
    # The socket follows SSOCRED_RUNTIME_DIR, where `ssocred process` will look for it.
    assert f"ListenStream={os.environ['SSOCRED_RUNTIME_DIR']}/daemon.sock\n" in sock
    plist = plistlib.loads(service_manager.rendered("darwin")[svc.plist].encode())
    assert plist["EnvironmentVariables"] == {k: os.environ[k] for k in service_manager.PASS_ENV if os.environ.get(k)}


@pytest.mark.parametrize(
    ("word", "program", "expected"),
    [
        ("/usr/bin/ssocred", True, "/usr/bin/ssocred"),
        ("/opt/my apps/ssocred", True, '"/opt/my apps/ssocred"'),
        ("/opt/100%/ssocred", True, "/opt/100%%/ssocred"),
        ("/opt/$x/ssocred", True, "/opt/$x/ssocred"),
        ("$HOME", False, "$$HOME"),
        ('a "b" \\c', False, '"a \\"b\\" \\\\c"'),
        ("", False, '""'),
    ],
)
def test_systemd_word_quotes_for_execstart(word: str, program: bool, expected: str) -> None:
    assert service_manager.systemd_word(word, program=program) == expected


def test_command_is_the_console_script_then_path_then_python_m(svc: Svc, tmp_path: Path) -> None:
    assert service_manager.ssocred_command() == [str(svc.exe)]
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "ssocred").write_text("#!/bin/sh\n")
    (other / "ssocred").chmod(0o755)
    svc.monkeypatch.setattr(sys, "executable", str(tmp_path / "bare" / "python"))
    svc.monkeypatch.setenv("PATH", str(other))
    assert service_manager.ssocred_command() == [str(other / "ssocred")]
    svc.monkeypatch.setenv("PATH", str(svc.fakebin))
    assert service_manager.ssocred_command() == [str(tmp_path / "bare" / "python"), "-m", "ssocred"]
    files = service_manager.rendered("linux")
    assert f"ExecStart={tmp_path}/bare/python -m ssocred daemon\n" in files[svc.unit("ssocred.service")]
    plist = plistlib.loads(service_manager.rendered("darwin")[svc.plist].encode())
    assert plist["ProgramArguments"] == [str(tmp_path / "bare" / "python"), "-m", "ssocred", "daemon"]


def test_unit_dir_follows_xdg_config_home(svc: Svc, tmp_path: Path) -> None:
    svc.monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert service_manager.unit_dir() == tmp_path / "cfg" / "systemd" / "user"
    svc.monkeypatch.setenv("XDG_CONFIG_HOME", "relative/ignored")
    assert service_manager.unit_dir() == svc.home / ".config" / "systemd" / "user"


def test_templates_are_found() -> None:
    for name in ("ssocred.service", "ssocred.socket", "com.ssocred.daemon.plist"):
        assert service_manager.template(name) == (ROOT / "service" / name).read_text()


# --- systemd-analyze verify and plistlib ------------------------------------------------------


def _verify(units: list[Path], runtime: Path) -> list[tuple[list[str], subprocess.CompletedProcess[str]]]:
    analyze = require("systemd-analyze")
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "SYSTEMD_LOG_COLOR": "0", "SYSTEMD_PAGER": ""}
    results = []
    # `--user` needs only a runtime dir, not a running manager: it works as root in a container.
    for scope in (["--user"], []):
        argv = [analyze, *scope, "verify", "--man=no", "--generators=no", *map(str, units)]
        results.append((argv, subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)))
    return results


@pytest.mark.parametrize("store", ["keyring", "memory"])
def test_rendered_units_pass_systemd_analyze_verify(svc: Svc, tmp_path: Path, store: str) -> None:
    # A path that needs quoting and escaping in ExecStart=, and a value that needs it in Environment=.
    svc.venv(tmp_path / "my venv 100% $HOME")
    svc.monkeypatch.setenv("SSOCRED_STATE_DIR", str(tmp_path / 'state "x" 5%'))
    outdir = tmp_path / "units"
    outdir.mkdir()
    files = service_manager.rendered("linux", store)
    for path, content in files.items():
        (outdir / path.name).write_text(content)
    unit = (outdir / "ssocred.service").read_text()
    options = " --store memory" if store == "memory" else ""
    assert f'ExecStart="{str(svc.exe).replace("%", "%%")}" daemon{options}\n' in unit
    assert ("\nLimitMEMLOCK=infinity\n" in unit) == (store == "memory")
    for argv, proc in _verify([outdir / "ssocred.service", outdir / "ssocred.socket"], tmp_path / "rt"):
        output = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"{shlex.join(argv)}:\n{output}"
        # Warnings such as "Unknown key ..., ignoring" do not change the exit status.
        assert not re.search(r"ssocred\.(service|socket)", output), f"{shlex.join(argv)}:\n{output}"


def test_systemd_analyze_verify_catches_a_missing_executable(svc: Svc, tmp_path: Path) -> None:
    outdir = tmp_path / "units"
    outdir.mkdir()
    for path, content in service_manager.rendered("linux").items():
        (outdir / path.name).write_text(content)
    svc.exe.unlink()
    results = _verify([outdir / "ssocred.service", outdir / "ssocred.socket"], tmp_path / "rt")
    for argv, proc in results:
        assert proc.returncode != 0, shlex.join(argv)
        assert "is not executable" in proc.stdout + proc.stderr


def test_plist_parses_with_the_agent_keys(svc: Svc, tmp_path: Path) -> None:
    svc.venv(tmp_path / "a&b <c>")
    data = plistlib.loads(service_manager.rendered("darwin")[svc.plist].encode())
    assert data["Label"] == "com.ssocred.daemon"
    program = data["ProgramArguments"]
    assert program == [str(svc.exe), "daemon"]
    assert os.path.isabs(program[0]) and os.access(program[0], os.X_OK)
    assert data["RunAtLoad"] is True
    assert data["KeepAlive"] == {"SuccessfulExit": False}
    assert data["StandardErrorPath"] == os.path.join(os.environ["SSOCRED_LOG_DIR"], "daemon.log")


def test_memory_plist_parses_and_passes_the_store(svc: Svc, tmp_path: Path) -> None:
    svc.venv(tmp_path / "a&b <c>")
    text = service_manager.rendered("darwin", "memory")[svc.plist]
    data = plistlib.loads(text.encode())
    assert data["ProgramArguments"] == [str(svc.exe), "daemon", "--store", "memory"]
    # No lock limit for launchd to set: the comment says why, and the rest is the default agent.
    assert "<!-- The memory store: no MemoryLock resource limit; the daemon locks its memory out of swap on Linux " \
           "only. -->" in text
    default = plistlib.loads(service_manager.rendered("darwin")[svc.plist].encode())
    assert {**data, "ProgramArguments": None} == {**default, "ProgramArguments": None}


@pytest.mark.slow
def test_memory_daemon_starts_on_the_first_connection_to_its_socket(
    home: Path, emu: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The memory-store unit keeps socket activation: its daemon takes the socket systemd passes and keeps the login.

    systemd-socket-activate stands in for the user manager: it listens on the socket unit's ListenStream= and
    runs the service unit's ExecStart= on the first connection, passing the socket as systemd does.
    """
    activate = require("systemd-socket-activate")
    write_config(session_config("corp"))
    files = service_manager.rendered("linux", "memory")
    found = re.search(r"^ExecStart=(.*)$", files[service_manager.unit_dir() / "ssocred.service"], flags=re.M)
    listen = re.search(r"^ListenStream=(.*)$", files[service_manager.unit_dir() / "ssocred.socket"], flags=re.M)
    assert found is not None and listen is not None
    assert listen[1] == socket_protocol.socket_path()
    Path(listen[1]).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    passed = [f"--setenv={k}" for k in os.environ if k == "HOME" or k.startswith(("AWS_", "SSOCRED_"))]
    output = tmp_path / "activated.log"
    with output.open("w") as out:
        proc = subprocess.Popen([activate, f"--listen={listen[1]}", *passed, *shlex.split(found[1])],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 60
        while "Listening on" not in output.read_text() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "Listening on" in output.read_text() and "Execing" not in output.read_text(), output.read_text()
        # The first caller starts the daemon; on a loaded machine that may take longer than a caller waits.
        monkeypatch.setattr(socket_protocol, "SILENCE_TIMEOUT", 120.0)
        request = json.dumps({"v": socket_protocol.PROTOCOL_VERSION, "op": "store",
                              "service": socket_protocol.keyring_service(), "backend": ""}) + "\n"
        reply = socket_protocol.exchange(request.encode())
        assert reply is not None, output.read_text()
        assert (reply[0], json.loads(reply[1])) == (0, {"store": "memory", "pid": proc.pid})
        assert "(socket activation)" in output.read_text()

        login = run_ssocred("login", "--sso-session", "corp", "--use-device-code", timeout=120)
        assert login.returncode == 0, login.stderr
        assert "stored in: the memory of the ssocred daemon" in login.stdout
        creds = run_ssocred("process", "--sso-session", "corp", "--account-id", ACCOUNT, "--role-name", ROLE)
        assert creds.returncode == 0, creds.stderr
        assert json.loads(creds.stdout)["Version"] == 1
        status = run_ssocred("status", "--json")
        assert json.loads(status.stdout)["store"] == {"kind": "memory", "pid": proc.pid, "lost_sessions": []}
    finally:
        proc.terminate()
        proc.wait(60)


# --- install and uninstall with fake systemctl / launchctl -------------------------------------


def test_install_and_uninstall_linux(svc: Svc, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "install", "--platform", "linux")
    assert (code, err) == (0, "")
    expected = service_manager.rendered("linux")
    assert set(expected) == {svc.unit("ssocred.service"), svc.unit("ssocred.socket")}
    for path, content in expected.items():
        assert path.read_text() == content
        assert path.stat().st_mode & 0o777 == 0o644
    assert f"ExecStart={svc.exe} daemon\n" in svc.unit("ssocred.service").read_text()
    assert svc.calls() == [
        "systemctl --user daemon-reload",
        "systemctl --user enable --now ssocred.socket ssocred.service",
    ]
    assert f"wrote {svc.unit('ssocred.service')}" in out.splitlines()

    svc.log.unlink()
    assert run(capsys, "uninstall", "--platform", "linux")[0] == 0
    assert not svc.unit("ssocred.service").exists() and not svc.unit("ssocred.socket").exists()
    assert svc.calls() == [
        "systemctl --user disable --now ssocred.socket ssocred.service",
        "systemctl --user daemon-reload",
    ]

    svc.log.unlink()
    code, out, _ = run(capsys, "uninstall", "--platform", "linux")
    assert (code, out, svc.calls()) == (0, "ssocred service is not installed; nothing to do\n", [])


def test_reinstall_restarts_the_daemon_only_when_the_unit_changed(
    svc: Svc, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "install", "--platform", "linux")[0] == 0
    svc.log.unlink()
    assert run(capsys, "install", "--platform", "linux")[0] == 0
    assert "systemctl --user try-restart ssocred.service" not in svc.calls()
    svc.log.unlink()
    svc.venv(tmp_path / "upgraded")
    assert run(capsys, "install", "--platform", "linux")[0] == 0
    assert svc.calls() == [
        "systemctl --user daemon-reload",
        "systemctl --user try-restart ssocred.service",
        "systemctl --user enable --now ssocred.socket ssocred.service",
    ]
    assert f"ExecStart={svc.exe} daemon\n" in svc.unit("ssocred.service").read_text()


def test_memory_store_install_status_and_uninstall_linux(svc: Svc, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "install", "--store", "memory", "--platform", "linux")
    assert (code, err) == (0, "")
    unit = svc.unit("ssocred.service")
    assert unit.read_text() == service_manager.rendered("linux", "memory")[unit]
    assert svc.unit("ssocred.socket").read_text() == service_manager.rendered("linux")[svc.unit("ssocred.socket")]
    assert "the daemon runs with your session, keeps tokens in its memory only" in out

    code, out, _ = run(capsys, "status", "--json", "--platform", "linux")
    data = json.loads(out)
    assert (code, data["store"], set(data["files"].values())) == (0, "memory", {"installed"})
    unit.write_text(unit.read_text() + "# edited\n")
    code, out, _ = run(capsys, "status", "--platform", "linux")
    assert "store: memory: the daemon keeps tokens in its memory only (a restart means a new login)" in out.splitlines()
    assert f"{unit}: outdated" in out.splitlines()
    assert "(outdated: run `ssocred service install --store memory` again to rewrite the files)" in out.splitlines()

    svc.log.unlink()
    code, out, _ = run(capsys, "uninstall", "--dry-run", "--json", "--platform", "linux")
    assert (code, json.loads(out)["store"]) == (0, "memory")
    assert run(capsys, "uninstall", "--platform", "linux")[0] == 0
    assert not unit.exists() and not svc.unit("ssocred.socket").exists()
    assert svc.calls() == [
        "systemctl --user disable --now ssocred.socket ssocred.service",
        "systemctl --user daemon-reload",
    ]
    data = json.loads(run(capsys, "status", "--json", "--platform", "linux")[1])
    assert (data["store"], set(data["files"].values())) == (None, {"missing"})


def test_reinstall_keeps_the_installed_store_unless_told(svc: Svc, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "install", "--store", "memory", "--platform", "linux")[0] == 0
    svc.log.unlink()
    assert run(capsys, "install", "--platform", "linux")[0] == 0  # an upgrade's reinstall: no restart, no new store
    unit = svc.unit("ssocred.service")
    assert unit.read_text() == service_manager.rendered("linux", "memory")[unit]
    assert "try-restart" not in " ".join(svc.calls())
    assert json.loads(run(capsys, "status", "--json", "--platform", "linux")[1])["store"] == "memory"


def test_reinstall_with_another_store_restarts_the_daemon(svc: Svc, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "install", "--store", "memory", "--platform", "linux")[0] == 0
    svc.log.unlink()
    assert run(capsys, "install", "--store", "keyring", "--platform", "linux")[0] == 0
    assert svc.calls() == [
        "systemctl --user daemon-reload",
        "systemctl --user try-restart ssocred.service",
        "systemctl --user enable --now ssocred.socket ssocred.service",
    ]
    unit = svc.unit("ssocred.service")
    assert unit.read_text() == service_manager.rendered("linux")[unit]
    assert json.loads(run(capsys, "status", "--json", "--platform", "linux")[1])["store"] == "keyring"


def test_memory_store_install_status_and_uninstall_darwin(svc: Svc, capsys: pytest.CaptureFixture[str]) -> None:
    domain = f"gui/{os.getuid()}"
    assert run(capsys, "install", "--store", "memory", "--platform", "darwin")[0] == 0
    assert svc.plist.read_text() == service_manager.rendered("darwin", "memory")[svc.plist]
    assert svc.calls() == [f"launchctl bootstrap {domain} {svc.plist}"]
    data = json.loads(run(capsys, "status", "--json", "--platform", "darwin")[1])
    assert (data["store"], data["files"]) == ("memory", {str(svc.plist): "installed"})
    svc.log.unlink()
    assert run(capsys, "uninstall", "--platform", "darwin")[0] == 0
    assert not svc.plist.exists()
    assert svc.calls() == [f"launchctl bootout {domain}/com.ssocred.daemon"]


def test_install_and_uninstall_darwin(svc: Svc, capsys: pytest.CaptureFixture[str]) -> None:
    domain = f"gui/{os.getuid()}"
    assert run(capsys, "install", "--platform", "darwin")[0] == 0
    assert svc.plist.read_text() == service_manager.rendered("darwin")[svc.plist]
    assert Path(os.environ["SSOCRED_LOG_DIR"]).is_dir()
    assert svc.calls() == [f"launchctl bootstrap {domain} {svc.plist}"]

    svc.log.unlink()
    assert run(capsys, "install", "--platform", "darwin")[0] == 0
    assert svc.calls() == [
        f"launchctl bootout {domain}/com.ssocred.daemon",
        f"launchctl bootstrap {domain} {svc.plist}",
    ]

    svc.log.unlink()
    assert run(capsys, "uninstall", "--platform", "darwin")[0] == 0
    assert not svc.plist.exists()
    assert svc.calls() == [f"launchctl bootout {domain}/com.ssocred.daemon"]


# --- failures: one line, non-zero exit, files as they were -------------------------------------


def _one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ssocred: "), err
    return lines[0]


def test_failing_systemctl_gives_one_line_and_leaves_no_files(svc: Svc, capsys: pytest.CaptureFixture[str]) -> None:
    svc.monkeypatch.setenv("FAKE_FAIL", "enable")
    svc.monkeypatch.setenv("FAKE_STDERR", "Failed to enable unit: Access denied")
    code, _, err = run(capsys, "install", "--platform", "linux")
    line = _one_line(err)
    assert code == 5
    assert "`systemctl --user enable --now ssocred.socket ssocred.service` failed: Failed to enable unit" in line
    assert "systemctl --user status ssocred.service" in line
    assert not svc.unit("ssocred.service").exists() and not svc.unit("ssocred.socket").exists()


def test_failing_install_restores_the_previous_units(svc: Svc, capsys: pytest.CaptureFixture[str]) -> None:
    old = svc.unit("ssocred.service")
    old.parent.mkdir(parents=True)
    old.write_text("[Service]\nExecStart=/old/ssocred daemon\n")
    svc.monkeypatch.setenv("FAKE_FAIL", "enable")
    assert run(capsys, "install", "--platform", "linux")[0] == 5
    assert old.read_text() == "[Service]\nExecStart=/old/ssocred daemon\n"
    assert not svc.unit("ssocred.socket").exists()


def test_no_user_bus_names_the_fix(svc: Svc, capsys: pytest.CaptureFixture[str]) -> None:
    svc.monkeypatch.setenv("FAKE_FAIL", "daemon-reload")
    svc.monkeypatch.setenv("FAKE_STDERR", "Failed to connect to bus: No medium found")
    code, _, err = run(capsys, "install", "--platform", "linux")
    line = _one_line(err)
    assert code == 5
    assert "no systemd user session" in line and "loginctl enable-linger" in line
    assert not svc.unit("ssocred.service").exists() and not svc.unit("ssocred.socket").exists()


def test_missing_systemctl_changes_nothing(svc: Svc, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    svc.monkeypatch.setenv("PATH", str(empty))
    code, _, err = run(capsys, "install", "--platform", "linux")
    assert code == 5
    assert "systemctl not found" in _one_line(err)
    assert not (svc.home / ".config").exists()


def test_failing_uninstall_keeps_the_units(svc: Svc, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "install", "--platform", "linux")[0] == 0
    svc.monkeypatch.setenv("FAKE_FAIL", "disable")
    code, _, err = run(capsys, "uninstall", "--platform", "linux")
    assert code == 5 and "disable" in _one_line(err)
    assert svc.unit("ssocred.service").exists() and svc.unit("ssocred.socket").exists()


def test_failing_bootstrap_leaves_no_plist(svc: Svc, capsys: pytest.CaptureFixture[str]) -> None:
    svc.monkeypatch.setenv("FAKE_FAIL", "bootstrap")
    svc.monkeypatch.setenv("FAKE_STDERR", "Bootstrap failed: 5: Input/output error")
    code, _, err = run(capsys, "install", "--platform", "darwin")
    assert code == 5 and "Bootstrap failed: 5" in _one_line(err)
    assert not svc.plist.exists()


def test_unsupported_platform_is_a_usage_error(svc: Svc, capsys: pytest.CaptureFixture[str]) -> None:
    svc.monkeypatch.setattr(sys, "platform", "win32")
    code, _, err = run(capsys, "install")
    assert code == 2 and "contrib/windows" in _one_line(err)


def test_store_is_keyring_or_memory_and_for_install_only(svc: Svc, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "install", "--store", "disk", "--platform", "linux")
    assert (code, out) == (2, "")
    assert "invalid choice: 'disk'" in _one_line(err)
    assert run(capsys, "install", "--store", "--platform", "linux")[0] == 2
    for action in ("uninstall", "status"):
        code, out, err = run(capsys, action, "--store", "memory", "--platform", "linux")
        assert (code, out) == (2, "")
        assert "--store goes with install only" in _one_line(err)
    assert not (svc.home / ".config").exists()
    assert svc.calls() == []


def test_bad_arguments_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert service_cli.main(["reinstall"]) == 2
    assert service_cli.main(["status", "--platform", "windows"]) == 2
    assert service_cli.main(["--help"]) == 0
    assert "install" in capsys.readouterr().out


# --- status ----------------------------------------------------------------------------------


def test_status_linux(svc: Svc, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "status", "--json", "--platform", "linux")
    data = json.loads(out)
    assert code == 0
    assert set(data["files"].values()) == {"missing"}
    assert data["socket"] == os.path.join(os.environ["SSOCRED_RUNTIME_DIR"], "daemon.sock")
    assert data["units"]["ssocred.service"] == {"active": "active", "enabled": "enabled"}

    assert run(capsys, "install", "--platform", "linux")[0] == 0
    svc.unit("ssocred.socket").write_text("# edited\n")
    code, out, _ = run(capsys, "status", "--platform", "linux")
    assert code == 0
    assert f"{svc.unit('ssocred.service')}: installed" in out.splitlines()
    assert f"{svc.unit('ssocred.socket')}: outdated" in out.splitlines()
    assert "ssocred.service: active, enabled" in out.splitlines()
    assert f"socket: {data['socket']} (absent)" in out.splitlines()


def test_status_without_systemctl(svc: Svc, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    svc.monkeypatch.setenv("PATH", str(empty))
    code, out, _ = run(capsys, "status", "--json", "--platform", "linux")
    assert code == 0
    assert json.loads(out)["units"]["ssocred.socket"]["enabled"] == "unknown: systemctl not found"


def test_status_darwin(svc: Svc, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "install", "--platform", "darwin")[0] == 0
    code, out, _ = run(capsys, "status", "--json", "--platform", "darwin")
    data = json.loads(out)
    assert code == 0
    assert data["files"] == {str(svc.plist): "installed"}
    assert data["agent"] == {"loaded": True, "state": "running", "pid": "4242"}
    code, out, _ = run(capsys, "status", "--platform", "darwin")
    assert "com.ssocred.daemon: loaded, state running, pid 4242" in out.splitlines()


# --- contrib: completions, Windows task, example config ----------------------------------------


def _readme_commands() -> set[str]:
    return set(re.findall(r"^\| `ssocred (\w+)", (ROOT / "README.md").read_text(), flags=re.M))


@pytest.mark.parametrize("name", ["ssocred.bash", "_ssocred", "ssocred.fish"])
def test_completions_cover_every_command(name: str) -> None:
    text = (COMPLETIONS / name).read_text()
    for command in {*COMMANDS, *_readme_commands()}:
        assert re.search(rf"\b{command}\b", text), f"{name} does not complete `ssocred {command}`"


def _bash_complete(config: Path, *words: str) -> list[str]:
    script = f"""
source {shlex.quote(str(COMPLETIONS / 'ssocred.bash'))}
COMP_WORDS=({' '.join(shlex.quote(w) for w in words)}); COMP_CWORD={len(words) - 1}
_ssocred
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    env = {**os.environ, "AWS_CONFIG_FILE": str(config)}
    proc = subprocess.run([shell("bash"), "-c", script], capture_output=True, text=True, env=env, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return [w for w in proc.stdout.splitlines() if w]


def test_bash_completion_parses_and_completes(tmp_path: Path) -> None:
    bash = shell("bash")
    check = subprocess.run([bash, "-n", str(COMPLETIONS / "ssocred.bash")], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    config = tmp_path / "config"
    config.write_text("[default]\n[profile dev]\n[profile prod]\n[sso-session corp]\n")
    assert set(_bash_complete(config, "ssocred", "")) >= set(COMMANDS)
    assert _bash_complete(config, "ssocred", "lo") == ["login", "logout"]
    assert _bash_complete(config, "ssocred", "service", "") == ["install", "uninstall", "status"]
    assert "--store" in _bash_complete(config, "ssocred", "service", "install", "--")
    assert _bash_complete(config, "ssocred", "service", "install", "--store", "") == ["keyring", "memory"]
    assert _bash_complete(config, "ssocred", "service", "--store", "memory", "") == ["install", "uninstall", "status"]
    assert _bash_complete(config, "ssocred", "login", "--profile", "") == ["default", "dev", "prod"]
    assert _bash_complete(config, "ssocred", "env", "--sso-session", "") == ["corp"]
    assert _bash_complete(config, "ssocred", "env", "--format", "p") == ["powershell", "process"]
    assert "populate" in _bash_complete(config, "ssocred", "configure", "")
    assert _bash_complete(config, "ssocred", "configure", "--region", "eu-west-1", "p") == ["populate"]
    assert _bash_complete(config, "ssocred", "configure", "populate", "--sso-session", "") == ["corp"]
    assert "--template" in _bash_complete(config, "ssocred", "configure", "populate", "--")
    assert "--template" not in _bash_complete(config, "ssocred", "configure", "--")
    assert _bash_complete(config, "ssocred", "configure", "--output", "y") == ["yaml", "yaml-stream"]
    assert _bash_complete(config, "ssocred", "configure", "--start-url", "") == []
    assert _bash_complete(config, "ssocred", "doctor", "--profile", "") == ["default", "dev", "prod"]


def test_zsh_completion_parses() -> None:
    proc = subprocess.run([shell("zsh"), "-n", str(COMPLETIONS / "_ssocred")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_fish_completion_parses_and_completes(tmp_path: Path) -> None:
    fish = shell("fish")
    check = subprocess.run([fish, "--no-execute", str(COMPLETIONS / "ssocred.fish")], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    config = tmp_path / "config"
    config.write_text("[profile dev]\n[sso-session corp]\n")
    script = f"source {shlex.quote(str(COMPLETIONS / 'ssocred.fish'))}; complete -C 'ssocred '; " \
             "echo ==; complete -C 'ssocred login --profile '; echo ==; complete -C 'ssocred configure '; " \
             "echo ==; complete -C 'ssocred configure populate --sso-session '; " \
             "echo ==; complete -C 'ssocred service install --store '"
    env = {**os.environ, "AWS_CONFIG_FILE": str(config), "HOME": str(tmp_path)}
    proc = subprocess.run([fish, "--no-config", "-c", script], capture_output=True, text=True, env=env, timeout=30)
    assert proc.returncode == 0, proc.stderr
    commands, profiles, configure, sessions, stores = proc.stdout.split("==\n")
    assert {line.split("\t")[0] for line in commands.splitlines()} >= set(COMMANDS)
    assert [line.split("\t")[0] for line in profiles.splitlines()] == ["dev"]
    assert [line.split("\t")[0] for line in configure.splitlines()] == ["populate"]
    assert [line.split("\t")[0] for line in sessions.splitlines()] == ["corp"]
    assert [line.split("\t")[0] for line in stores.splitlines()] == ["keyring", "memory"]


def test_windows_task_runs_the_daemon_at_logon() -> None:
    ns = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}
    task = ET.parse(CONTRIB / "windows" / "ssocred-daemon.xml").getroot()
    assert task.find("t:Triggers/t:LogonTrigger", ns) is not None
    assert task.findtext("t:Actions/t:Exec/t:Arguments", namespaces=ns) == "-m ssocred daemon"
    assert task.findtext("t:Settings/t:ExecutionTimeLimit", namespaces=ns) == "PT0S"
    assert task.findtext("t:Principals/t:Principal/t:RunLevel", namespaces=ns) == "LeastPrivilege"
    assert "schtasks /Create" in (CONTRIB / "windows" / "README.md").read_text()


def test_example_config_resolves_every_profile() -> None:
    from ssocred.model import config

    cfg = config.parse((CONTRIB / "config.example").read_text())
    assert cfg.profiles
    for name, profile in cfg.profiles.items():
        assert profile.credential_process and profile.credential_process.startswith("ssocred process ")
        assert profile.sso_account_id is None and profile.sso_role_name is None
        target = cfg.ssocred_target(name)
        assert cfg.resolve_session(target.session).start_url.startswith("https://")
