"""The daemon as a systemd user service (Linux) or a launchd agent (macOS): render, plan, apply, status.

Example: ``plan("linux", "install")`` lists the files to write and the commands to run, as data;
``plan("linux", "install", STORE_MEMORY)`` the same for a daemon that keeps the tokens in its memory only.
"""

from __future__ import annotations

import itertools
import os
import plistlib
import re
import shlex
import shutil
import string
import subprocess
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from ssocred import socket_protocol
from ssocred.adapters.paths import atomic_write, ssocred_command
from ssocred.adapters.service_files import LABEL, installed, plist_text, unit_dir_text
from ssocred.errors import ServiceError, UsageError
from ssocred.socket_protocol import STORE_KEYRING, STORE_MEMORY

#: The systemd units, in the order they are enabled.
UNITS = ("ssocred.socket", "ssocred.service")
#: Variables that relocate ssocred's files: the daemon must see what the installing shell sees.
PASS_ENV = ("AWS_CONFIG_FILE", "SSOCRED_STATE_DIR", "SSOCRED_RUNTIME_DIR", "SSOCRED_LOG_DIR",
            "SSOCRED_KEYRING_SERVICE", "PYTHON_KEYRING_BACKEND")
__all__ = ["LABEL", "STORES", "installed", "installed_store", "plan", "plist_path", "rendered", "status", "unit_dir"]
#: Where the installed daemon keeps tokens (its ``--store``): the OS keyring, the default, or its memory only.
STORES = (STORE_KEYRING, STORE_MEMORY)
#: What the memory store adds to the systemd unit: a lock limit that lets the daemon keep its memory out of swap.
SYSTEMD_MEMORY = (
    "# --store memory keeps the tokens in this daemon's memory only. It locks that memory out of swap (mlockall)",
    "# only when the lock limit is unlimited (or at least 2 GiB), so that no later allocation can fail for it.",
    "# systemd lowers this to the hard limit of the user's service manager when that is lower; the daemon then",
    "# logs that swap may hold the tokens.",
    "LimitMEMLOCK=infinity",
)
#: What the memory store adds to the launchd agent: why it sets no lock limit (an XML comment allows no "--").
LAUNCHD_MEMORY = (
    "<!-- The memory store: no MemoryLock resource limit; the daemon locks its memory out of swap on Linux only. -->",
)
PLATFORMS = {"linux": "systemd user units", "darwin": "launchd agent"}
TOOLS = {"linux": "systemctl", "darwin": "launchctl"}
SYSTEMCTL = ("systemctl", "--user")
#: systemctl waits for the daemon's READY=1, and systemd gives a start 90 seconds by default.
COMMAND_TIMEOUT = 150.0
_PLAIN = frozenset(string.ascii_letters + string.digits + "/._-+:,=@%$")


@dataclass(frozen=True)
class Step:
    """One change: ``write`` or ``remove`` a file, ``mkdir`` a directory, or ``run`` a command.

    Example: ``Step("run", argv=("systemctl", "--user", "daemon-reload")).script()``
    """

    op: str
    path: Path | None = None
    content: str = ""
    argv: tuple[str, ...] = ()
    may_fail: bool = False

    def script(self) -> str:
        """The step as shell, e.g. ``rm -f /home/me/.config/systemd/user/ssocred.socket``."""
        where = shlex.quote(str(self.path))
        if self.op == "write":
            return f"cat > {where} <<'EOF'\n{self.content}EOF"
        if self.op == "remove":
            return f"rm -f {where}"
        if self.op == "mkdir":
            return f"mkdir -p {where}"
        return shlex.join(self.argv) + (" || true" if self.may_fail else "")

    def done(self) -> str:
        """What the step did, for the report, e.g. ``wrote /home/me/.config/systemd/user/ssocred.socket``."""
        verb = {"write": "wrote", "remove": "removed", "mkdir": "created"}.get(self.op)
        return f"{verb} {self.path}" if verb else f"ran {shlex.join(self.argv)}"

    def as_json(self) -> dict[str, Any]:
        """The step as data, e.g. ``{"op": "run", "argv": ["launchctl", "bootstrap", ...], "may_fail": False}``."""
        if self.op == "run":
            return {"op": "run", "argv": list(self.argv), "may_fail": self.may_fail}
        data: dict[str, Any] = {"op": self.op, "path": str(self.path)}
        if self.op == "write":
            data["content"] = self.content
        return data


def host_platform() -> str:
    """``linux`` or ``darwin`` from ``sys.platform``; e.g. ``"darwin"`` on a Mac, a usage error on Windows."""
    for name in PLATFORMS:
        if sys.platform.startswith(name):
            return name
    raise UsageError(
        f"ssocred service supports Linux (systemd) and macOS (launchd), not {sys.platform}",
        fix="on Windows use the Task Scheduler example in contrib/windows/ of the ssocred sources",
    )


def systemd_word(word: str, *, program: bool = False) -> str:
    """One ExecStart word, quoted if needed: ``systemd_word("/opt/my apps/ssocred")`` is ``"/opt/my apps/ssocred"``."""
    if any(c in word for c in "\n\r\0"):
        raise ServiceError(f"cannot put {word!r} in a unit file", fix="install ssocred under a plainer path")
    text = word.replace("%", "%%")
    if not program:  # systemd expands $VARS in the arguments, never in the program path
        text = text.replace("$", "$$")
    if text and set(text) <= _PLAIN:
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def template(name: str) -> str:
    """A template from ``service/``, e.g. ``template("ssocred.socket")``.

    A wheel carries them as ``ssocred/service/``; an editable install reads the checkout's ``service/``.
    """
    packaged = resources.files("ssocred") / "service" / name
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    checkout = Path(__file__).resolve().parents[2] / "service" / name
    if checkout.is_file():
        return checkout.read_text(encoding="utf-8")
    raise ServiceError(f"the service template {name} is missing from this installation", fix="reinstall ssocred")


def _fill(text: str, words: dict[str, str], each: dict[str, list[str]], blocks: dict[str, list[str]]) -> str:
    """Replace ``@KEY@``: by a value (``words``), by one line per value (``each``), or a marker line by lines."""
    out: list[str] = []
    for line in text.splitlines(keepends=True):
        indent = line[: len(line) - len(line.lstrip())]
        marker = line.strip().removeprefix("<!--").removesuffix("-->").removeprefix("#").strip()
        if marker.startswith("@") and marker.endswith("@") and marker[1:-1] in blocks:
            out.extend(f"{indent}{b}\n" for b in blocks[marker[1:-1]])
            continue
        lines = [line]
        for key, values in each.items():
            if f"@{key}@" in line:
                lines = [line.replace(f"@{key}@", v) for v in values]
        for key, value in words.items():
            lines = [x.replace(f"@{key}@", value) for x in lines]
        out.extend(lines)
    return "".join(out)


def _passed_env() -> dict[str, str]:
    return {k: os.environ[k] for k in PASS_ENV if os.environ.get(k)}


def unit_dir() -> Path:
    """Where systemd looks for user units: ``$XDG_CONFIG_HOME/systemd/user``, e.g. ``~/.config/systemd/user``."""
    return Path(unit_dir_text())


def plist_path() -> Path:
    """The launchd agent file, ``~/Library/LaunchAgents/com.ssocred.daemon.plist``."""
    return Path(plist_text())


def darwin_log_dir() -> Path:
    """The agent's log directory: ``$SSOCRED_LOG_DIR`` or ``~/Library/Logs/ssocred``."""
    return Path(os.environ.get("SSOCRED_LOG_DIR") or os.path.expanduser("~/Library/Logs/ssocred"))


def daemon_command(store: str = STORE_KEYRING) -> list[str]:
    """What the service manager runs, e.g. ``["/usr/bin/ssocred", "daemon", "--store", "memory"]`` for ``"memory"``.

    The default store adds no option, so a keyring service stays as it was before there was a choice.
    """
    if store not in STORES:
        raise UsageError(f"no store called {store!r}", fix=f"choose one of: {', '.join(STORES)}")
    return [*ssocred_command(), "daemon", *(["--store", store] if store != STORE_KEYRING else [])]


def rendered(platform: str, store: str = STORE_KEYRING) -> dict[Path, str]:
    """The files ``install`` writes, by path, e.g. ``rendered("linux", "memory")[unit_dir() / "ssocred.service"]``."""
    command, env = daemon_command(store), _passed_env()
    memory = store == STORE_MEMORY
    if platform == "darwin":
        env_xml = ["<key>EnvironmentVariables</key>", "<dict>"]
        for k, v in env.items():
            env_xml += [f"  <key>{escape(k)}</key>", f"  <string>{escape(v)}</string>"]
        plist = _fill(
            template(f"{LABEL}.plist"),
            {"LOGDIR": escape(str(darwin_log_dir()))},
            {"DAEMON": [escape(w) for w in command]},
            {"ENVIRONMENT": [*env_xml, "</dict>"] if env else [], "STORE": list(LAUNCHD_MEMORY) if memory else []},
        )
        return {plist_path(): plist}
    env_lines = []
    for k, v in env.items():
        value = f"{k}={v}".replace("%", "%%").replace("\\", "\\\\").replace('"', '\\"')
        env_lines.append(f'Environment="{value}"')
    override = os.environ.get("SSOCRED_RUNTIME_DIR")
    listen = os.path.abspath(socket_protocol.socket_path()).replace("%", "%%") if override else "%t/ssocred/daemon.sock"
    exec_start = " ".join(systemd_word(w, program=i == 0) for i, w in enumerate(command))
    return {
        unit_dir() / "ssocred.service": _fill(
            template("ssocred.service"), {"DAEMON": exec_start}, {},
            {"ENVIRONMENT": env_lines, "STORE": list(SYSTEMD_MEMORY) if memory else []},
        ),
        unit_dir() / "ssocred.socket": _fill(template("ssocred.socket"), {"SOCKET": listen}, {}, {}),
    }


def _run_step(*argv: str, may_fail: bool = False) -> Step:
    return Step("run", argv=argv, may_fail=may_fail)


def plan(platform: str, action: str, store: str = STORE_KEYRING) -> list[Step]:
    """The steps of ``install`` or ``uninstall``, e.g. ``plan("linux", "uninstall")`` (empty when not installed).

    ``store`` is the installed daemon's ``--store``; uninstall removes the files whichever was installed.
    """
    files = rendered(platform, store)
    present = [p for p in files if p.exists()]
    if platform == "darwin":
        domain = f"gui/{os.getuid()}"
        path = plist_path()
        if action == "uninstall":
            return [_run_step("launchctl", "bootout", f"{domain}/{LABEL}", may_fail=True), Step("remove", path)] \
                if present else []
        # bootstrap refuses a label that is already loaded, so a reinstall unloads the old agent first.
        unload = [_run_step("launchctl", "bootout", f"{domain}/{LABEL}", may_fail=True)] if present else []
        return [Step("mkdir", darwin_log_dir()), *unload, Step("write", path, files[path]),
                _run_step("launchctl", "bootstrap", domain, str(path))]
    if action == "uninstall":
        if not present:
            return []
        return [_run_step(*SYSTEMCTL, "disable", "--now", *UNITS), *(Step("remove", p) for p in present),
                _run_step(*SYSTEMCTL, "daemon-reload")]
    steps = [Step("write", p, c) for p, c in files.items()]
    steps.append(_run_step(*SYSTEMCTL, "daemon-reload"))
    # enable --now leaves a running daemon alone, so a changed unit needs a restart to take effect.
    if any(p.read_text(encoding="utf-8") != files[p] for p in present):
        steps.append(_run_step(*SYSTEMCTL, "try-restart", "ssocred.service"))
    steps.append(_run_step(*SYSTEMCTL, "enable", "--now", *UNITS))
    return steps


def _last_line(text: str) -> str:
    lines = [x.strip() for x in text.splitlines() if x.strip()]
    return lines[-1] if lines else ""


def _failure(argv: tuple[str, ...], proc: subprocess.CompletedProcess[str]) -> ServiceError:
    detail = _last_line(proc.stderr) or _last_line(proc.stdout) or f"exit status {proc.returncode}"
    if argv[0] == "systemctl" and ("connect to bus" in detail or "XDG_RUNTIME_DIR" in detail):
        return ServiceError(
            f"no systemd user session to install into ({detail})",
            fix="run this in your own login session (not under sudo or su), or start one with "
            "`loginctl enable-linger $USER`",
        )
    if argv[0] == "systemctl":
        where = "systemctl --user status ssocred.service"
    else:
        where = f"launchctl print gui/{os.getuid()}/{LABEL}"
    return ServiceError(f"`{shlex.join(argv)}` failed: {detail}", fix=f"see `{where}`; the files are as they were")


def _execute(step: Step) -> None:
    try:
        proc = subprocess.run(step.argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False)
    except OSError as exc:
        raise ServiceError(f"cannot run {step.argv[0]}: {exc.strerror}", fix="check that it is installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise ServiceError(f"`{shlex.join(step.argv)}` did not finish in {COMMAND_TIMEOUT:.0f} seconds",
                           fix="check the service manager's logs") from exc
    if proc.returncode and not step.may_fail:
        raise _failure(step.argv, proc)


def apply(steps: list[Step]) -> None:
    """Carry out ``steps`` in order; on any failure put back every file touched, then re-raise.

    Example: ``apply(plan("linux", "install"))``
    """
    saved: list[tuple[Path, bytes | None]] = []
    try:
        for step in steps:
            if step.op == "run":
                _execute(step)
                continue
            assert step.path is not None
            try:
                if step.op == "mkdir":
                    step.path.mkdir(parents=True, exist_ok=True)
                    continue
                saved.append((step.path, step.path.read_bytes() if step.path.exists() else None))
                if step.op == "write":
                    atomic_write(step.path, step.content.encode(), mode=0o644)
                else:
                    step.path.unlink(missing_ok=True)
            except OSError as exc:
                raise ServiceError(f"cannot {step.op} {step.path}: {exc.strerror}",
                                   fix="check the directory's owner and permissions") from exc
    except BaseException:
        for path, data in reversed(saved):
            if data is None:
                path.unlink(missing_ok=True)
            else:
                atomic_write(path, data, mode=0o644)
        raise


def _ask(*argv: str) -> tuple[int, str]:
    """Run a read-only query; (exit status, stdout or the last stderr line). Never raises."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, str(exc)
    return proc.returncode, proc.stdout.strip() or _last_line(proc.stderr)


def installed_store(platform: str) -> str | None:
    """The ``--store`` of the installed daemon, read from its unit or agent file; None when there is none.

    Example: ``installed_store("linux") == "memory"`` after ``ssocred service install --store memory``.
    """
    path = plist_path() if platform == "darwin" else unit_dir() / "ssocred.service"
    try:
        data = path.read_bytes()
    except OSError:
        return None
    words: list[str] = []
    if platform == "darwin":
        try:
            agent = plistlib.loads(data)
        except Exception:  # plistlib raises expat's errors too: an edited file is read as the default
            agent = {}
        args = agent.get("ProgramArguments") if isinstance(agent, dict) else None
        words = [w for w in args if isinstance(w, str)] if isinstance(args, list) else []
    else:
        found = re.search(rb"^ExecStart=(.*)$", data, flags=re.M)
        words = found[1].decode(errors="replace").split() if found else []
    chosen = next((b for a, b in itertools.pairwise(words) if a == "--store"), STORE_KEYRING)
    return chosen if chosen in STORES else STORE_KEYRING


def status(platform: str) -> dict[str, Any]:
    """What is installed and running, e.g. ``status("linux")["units"]["ssocred.service"]["active"] == "active"``.

    Files are compared with what ``install`` would write for the installed daemon's store (``"store"``).
    """
    sock = socket_protocol.socket_path()
    store = installed_store(platform)
    files = {}
    for path, content in rendered(platform, store or STORE_KEYRING).items():
        same = path.exists() and path.read_text(encoding="utf-8") == content
        files[str(path)] = "installed" if same else "outdated" if path.exists() else "missing"
    info: dict[str, Any] = {"platform": platform, "manager": PLATFORMS[platform], "files": files, "store": store,
                            "socket": sock, "socket_present": os.path.exists(sock)}
    if platform == "darwin":
        rc, out = _ask("launchctl", "print", f"gui/{os.getuid()}/{LABEL}")
        agent: dict[str, Any] = {"loaded": rc == 0}
        for line in out.splitlines() if rc == 0 else []:
            key, sep, value = line.strip().partition(" = ")
            if sep and key in ("state", "pid") and key not in agent:
                agent[key] = value
        info["agent"] = agent
        info["label"] = LABEL
    elif shutil.which("systemctl") is None:
        info["units"] = {u: {"active": "unknown", "enabled": "unknown: systemctl not found"} for u in UNITS}
    else:
        info["units"] = {u: {q: _ask(*SYSTEMCTL, f"is-{q}", u)[1] or "unknown" for q in ("active", "enabled")}
                         for u in UNITS}
    return info
