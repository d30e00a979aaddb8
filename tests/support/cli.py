"""Running the real ``ssocred`` command and writing AWS config files in tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ssocred.model.sso import Token
    from tests.support.emulator import RunningEmulator

START_URL = "https://d-1234567890.awsapps.com/start"
REGION = "us-east-1"
#: What tests/support/directory.json assigns (the emulator fixture loads it).
DIRECTORY = str(Path(__file__).with_name("directory.json"))
ACCOUNT = "111111111111"
ROLE = "ReadOnlyAccess"
OTHER_ACCOUNT = "222222222222"


def ssocred_argv() -> list[str]:
    """The installed console script when there is one beside the interpreter, else ``python -m ssocred``."""
    script = Path(sys.executable).parent / "ssocred"
    if script.exists():
        return [str(script)]
    found = shutil.which("ssocred")
    if found and Path(found).resolve().parent == Path(sys.executable).resolve().parent:
        return [found]
    return [sys.executable, "-m", "ssocred"]


def ssocred_line() -> str:
    """The same command as one shell-quoted string for a ``credential_process`` line."""
    import shlex

    return " ".join(shlex.quote(a) for a in ssocred_argv())


def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120, input_text: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``ssocred ARGS`` with the current (test) environment, capturing output."""
    return subprocess.run(
        [*ssocred_argv(), *args],
        env=env if env is not None else dict(os.environ),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input_text,
        check=False,
    )


def process_here(*args: str) -> tuple[int, str, str]:
    """``ssocred process ARGS`` answered in this process as it is without a daemon: (exit code, stdout, stderr).

    The same resolution ``ssocred.process.local`` runs in its own process, without starting an interpreter.
    """
    import contextlib
    import gc
    import io

    from ssocred.process.local import main

    out, err = io.StringIO(), io.StringIO()
    thresholds = gc.get_threshold()  # main tunes the collector for its own short-lived process
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    finally:
        gc.set_threshold(*thresholds)
    return code, out.getvalue(), err.getvalue()


def write_config(text: str) -> Path:
    """Write ``$AWS_CONFIG_FILE`` (the test HOME's config)."""
    path = Path(os.environ["AWS_CONFIG_FILE"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def session_config(name: str = "corp", *, scopes: str | None = "sso:account:access") -> str:
    """An ``[sso-session]`` section pointing at the test start URL."""
    lines = [f"[sso-session {name}]", f"sso_start_url = {START_URL}", f"sso_region = {REGION}"]
    if scopes is not None:
        lines.append(f"sso_registration_scopes = {scopes}")
    return "\n".join(lines) + "\n"


def process_profile(profile: str, account: str, role: str, session: str = "corp") -> str:
    """A profile that gets its credentials from ``ssocred process``."""
    return (
        f"[profile {profile}]\n"
        f"credential_process = {ssocred_line()} process --sso-session {session} "
        f"--account-id {account} --role-name {role}\n"
        f"region = {REGION}\n"
    )


def age_last_request(session: str, account: str, role: str, seconds: float) -> float:
    """Move a role's recorded last request ``seconds`` into the past (the store only moves it forward)."""
    import dataclasses

    from ssocred.adapters.store import Store
    from ssocred.adapters.store_index import IndexFile

    store = Store()
    entry = store.index().find_creds(session, account, role)
    assert entry is not None
    aged = dataclasses.replace(entry, last_requested_at=entry.last_requested_at - seconds)
    IndexFile(store.index_path(), 10).update(lambda ix: ix.with_creds(aged))
    return aged.last_requested_at


def run_on_a_terminal(argv: list[str], stdout_path: Path) -> tuple[int, str]:
    """Run ``argv`` with a pseudo-terminal as its controlling terminal and stdout to a file."""
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # child: the pty is /dev/tty; stdout goes to the file, as botocore's pipe would
        out = os.open(stdout_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(out, 1)
        os.execvpe(argv[0], argv, dict(os.environ))
    chunks = []
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode(errors="replace")


def login(emu: RunningEmulator | None = None, *, session: str = "corp", options: Sequence[str] = ()) -> Token:
    """``ssocred login --sso-session SESSION OPTIONS`` as a user runs it; the stored token.

    With ``emu``, its counters start at 0.

    The one way tests log in (the ``logged_in`` fixture uses it too).
    """
    import contextlib
    import io

    from ssocred.adapters import keyring_backend
    from ssocred.adapters.store import Store
    from ssocred.cli.main import main

    # This process noted its keyring backend for an earlier test: note it in this test's state dir too, as a
    # first login does, so that the commands the test runs next skip keyring's detection as a user's would.
    keyring_backend._remembered = None

    # The CLI's own entry point, in this process: the same login, without starting an interpreter.
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["login", "--sso-session", session, *options])
    assert code == 0, err.getvalue()
    if emu is not None:
        emu.reset()
    token = Store().load_session(session)
    assert token is not None
    return token
