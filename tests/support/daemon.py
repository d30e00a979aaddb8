"""Real ``ssocred daemon`` processes for tests: ``start_daemon(daemons, tmp_path, "--scan-interval", "1")``."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import ssocred_argv
from tests.support.emulator import REPO_ROOT

READY_TIMEOUT = 90.0


def daemon_argv() -> tuple[str, ...]:
    """The ``ssocred daemon`` command line."""
    return (*ssocred_argv(), "daemon")


class RunningDaemon:
    """A ``ssocred daemon`` subprocess with its own log file and notify socket."""

    def __init__(self, tmp: Path, args: list[str], env: dict[str, str]) -> None:
        self.log_path = tmp / f"daemon-{uuid.uuid4().hex[:6]}.log"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        address = f"ssocred-test-{uuid.uuid4().hex}"
        self.notify.bind("\0" + address)
        self.messages: list[str] = []
        full_env = {**os.environ, **env, "NOTIFY_SOCKET": "@" + address}
        full_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), full_env.get("PYTHONPATH")) if p)
        self.stderr = (tmp / f"{self.log_path.stem}.stderr").open("w+")
        self.proc = subprocess.Popen([*daemon_argv(), "--log-file", str(self.log_path), *args], env=full_env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.stderr)

    def wait_message(self, wanted: str, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while wanted not in self.messages:
            left = deadline - time.monotonic()
            assert left > 0 and self.proc.poll() is None, f"no {wanted}; {self.diagnostics()}"
            self.notify.settimeout(min(left, 1.0))
            try:
                self.messages.extend(self.notify.recv(4096).decode().split("\n"))
            except TimeoutError:
                pass

    def log_text(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def wait_log(self, pattern: str, count: int = 1, timeout: float = 120.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            found = [line for line in self.log_text().splitlines() if re.search(pattern, line)]
            if len(found) >= count:
                return found
            assert time.monotonic() < deadline, f"{count} x {pattern!r} not logged; {self.diagnostics()}"
            time.sleep(0.5)

    def diagnostics(self) -> str:
        self.stderr.seek(0)
        return f"exit={self.proc.poll()} stderr={self.stderr.read()[-2000:]!r} log={self.log_text()[-4000:]!r}"

    def stop(self, timeout: float = 45.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.notify.close()
        self.stderr.close()


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[list[RunningDaemon]]:
    """Start daemons with ``start_daemon(daemons, tmp_path, ...)``; any left running is killed."""
    started: list[RunningDaemon] = []
    yield started
    for d in started:
        d.close()


def start_daemon(started: list[RunningDaemon], tmp: Path, *args: str, ready: bool = True,
                 env: dict[str, str] | None = None) -> RunningDaemon:
    d = RunningDaemon(tmp, list(args), env or {})
    started.append(d)
    if ready:
        d.wait_message("READY=1")
    return d
