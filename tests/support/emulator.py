"""Run the emulator as a real process for tests: ``start_emulator()``, ``fork_emulator()`` and the fixtures."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config

from ssocred.emulator.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 20.0
REGION = "us-east-1"
START_URL = "https://d-1234567890.awsapps.com/start"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


class RunningEmulator:
    """A started ``python -m ssocred.emulator`` process and its control endpoints."""

    def __init__(self, url: str, proc: subprocess.Popen[str] | ForkedProcess, stderr: IO[str]) -> None:
        """Wrap a process that has printed its URL."""
        self.url = url
        self.proc = proc
        self._stderr = stderr
        self._stderr_text = ""

    def _call(self, method: str, path: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def stats(self) -> dict[str, Any]:
        """``GET /_stats``."""
        result: dict[str, Any] = self._call("GET", "/_stats")
        return result

    def reset(self) -> None:
        """``POST /_reset``: zero the counters."""
        self._call("POST", "/_reset", {})

    def control(self, **settings: Any) -> None:
        """``POST /_control``: change settings at run time."""
        self._call("POST", "/_control", settings)

    def revoke(self) -> None:
        """``POST /_revoke``: revoke every access and refresh token."""
        self._call("POST", "/_revoke", {})

    def set_directory(self, directory: dict[str, Any]) -> None:
        """``POST /_directory``: replace the accounts and roles at run time."""
        self._call("POST", "/_directory", directory)

    def env(self) -> dict[str, str]:
        """Environment variables that point botocore's sso-oidc, sso and sts clients here."""
        return {
            "AWS_ENDPOINT_URL_SSO_OIDC": self.url,
            "AWS_ENDPOINT_URL_SSO": self.url,
            "AWS_ENDPOINT_URL_STS": self.url,
        }

    def stderr_text(self) -> str:
        """Everything the process wrote to stderr so far (also after ``stop()``)."""
        if not self._stderr.closed:
            self._stderr.seek(0)
            self._stderr_text = self._stderr.read()
        return self._stderr_text

    def stop(self) -> None:
        """SIGTERM the process and wait for it to exit."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self.stderr_text()
        self._stderr.close()


def start_emulator(*args: str) -> RunningEmulator:
    """Start ``python -m ssocred.emulator --port 0 *args`` and wait (up to 20 s) for its URL line."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    stderr = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "ssocred.emulator", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=stderr,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    lines: list[str] = []
    assert proc.stdout is not None
    stdout = proc.stdout
    reader = threading.Thread(target=lambda: lines.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(START_TIMEOUT)
    line = lines[0] if lines else ""
    return _started(line, proc, stderr)


def _started(line: str, proc: Any, stderr: IO[str]) -> RunningEmulator:
    """The emulator whose first stdout line is ``line``; RuntimeError (and ``proc`` killed) when it is not its URL."""
    try:
        url = json.loads(line)["url"]
    except (ValueError, KeyError, TypeError):
        proc.kill()
        proc.wait()
        stderr.seek(0)
        raise RuntimeError(f"emulator did not start: stdout={line!r} stderr={stderr.read()!r}") from None
    return RunningEmulator(str(url), proc, stderr)


class ForkedProcess:
    """The ``subprocess.Popen`` calls tests make, for an emulator forked by the zygote (not this process's child).

    Its end is seen through a pidfd; its exit status goes to the zygote, so an ended one reports 0.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.stdout: IO[str] | None = None
        self.returncode: int | None = None
        self._pidfd = os.pidfd_open(pid)

    def poll(self) -> int | None:
        return self.wait(0) if self._ended(0) else None

    def _ended(self, timeout: float | None) -> bool:
        if self.returncode is not None:
            return True
        ready, _, _ = select.select([self._pidfd], [], [], timeout)
        return bool(ready)

    def wait(self, timeout: float | None = None) -> int:
        if not self._ended(timeout):
            raise subprocess.TimeoutExpired(f"emulator {self.pid}", timeout or 0)
        if self.returncode is None:
            self.returncode = 0
            os.close(self._pidfd)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            signal.pidfd_send_signal(self._pidfd, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class _Zygote:
    """``tests.support.emulator_zygote`` for this process, started on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None

    def fork(self, argv: list[str], env: dict[str, str], stdout: str, stderr: str) -> ForkedProcess:
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._proc = subprocess.Popen(
                    [sys.executable, "-m", "tests.support.emulator_zygote"], stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT)
            assert self._proc.stdin is not None and self._proc.stdout is not None
            request = {"argv": argv, "env": env, "cwd": os.getcwd(), "stdout": stdout, "stderr": stderr}
            self._proc.stdin.write(json.dumps(request) + "\n")
            self._proc.stdin.flush()
            answer = self._proc.stdout.readline()
            if not answer:
                raise RuntimeError("the emulator zygote ended")
            return ForkedProcess(int(json.loads(answer)["pid"]))


_ZYGOTE = _Zygote()


def fork_emulator(*args: str) -> RunningEmulator:
    """``start_emulator(*args)``, forked from a process that has the emulator imported: no interpreter start-up.

    For tests that talk to the emulator over HTTP only; ``proc`` ends as SIGTERM says but reports no exit status.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    stderr = tempfile.NamedTemporaryFile("w+", encoding="utf-8", prefix="emulator-", suffix=".stderr")  # noqa: SIM115
    with tempfile.NamedTemporaryFile("r", encoding="utf-8", prefix="emulator-", suffix=".stdout") as stdout:
        proc = _ZYGOTE.fork(["--port", "0", *args], env, stdout.name, stderr.name)
        deadline = time.monotonic() + START_TIMEOUT
        line = ""
        while not line.endswith("\n") and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
            line += stdout.readline()
    return _started(line, proc, stderr)


@lru_cache(maxsize=64)
def _client(service: str, url: str) -> Any:
    factory: Any = boto3.client
    return factory(service, region_name=REGION, endpoint_url=url, config=Config(signature_version=UNSIGNED))


def refresh_refused(url: str, registration: Mapping[str, Any], refresh_token: str) -> None:
    """Assert that the emulator at ``url`` refuses ``refresh_token`` with InvalidGrantException, as sso-oidc does."""
    oidc = oidc_client(url)
    with pytest.raises(oidc.exceptions.InvalidGrantException):
        oidc.create_token(clientId=registration["clientId"], clientSecret=registration["clientSecret"],
                          grantType="refresh_token", refreshToken=refresh_token)


def oidc_client(url: str, **config: Any) -> Any:
    """An unsigned boto3 sso-oidc client for the emulator at ``url``."""
    if not config:
        return _client("sso-oidc", url)
    return boto3.client(
        "sso-oidc", region_name=REGION, endpoint_url=url, config=Config(signature_version=UNSIGNED, **config)
    )


def sso_client(url: str, **config: Any) -> Any:
    """An unsigned boto3 sso (portal) client for the emulator at ``url``."""
    if not config:
        return _client("sso", url)
    return boto3.client(
        "sso", region_name=REGION, endpoint_url=url, config=Config(signature_version=UNSIGNED, **config)
    )


def sts_client(url: str, credentials: dict[str, Any] | None = None, **config: Any) -> Any:
    """A boto3 sts client signing with portal ``roleCredentials`` (or dummy keys when None)."""
    keys = credentials or {"accessKeyId": "AKIDEXAMPLE", "secretAccessKey": "dummy", "sessionToken": None}
    return boto3.client(
        "sts",
        region_name=REGION,
        endpoint_url=url,
        aws_access_key_id=keys["accessKeyId"],
        aws_secret_access_key=keys["secretAccessKey"],
        aws_session_token=keys.get("sessionToken"),
        config=Config(**config),
    )


def device_login(url: str, scopes: tuple[str, ...] = ("sso:account:access",)) -> tuple[dict[str, Any], dict[str, Any]]:
    """Register a client and finish the device flow; returns (registration, CreateToken response)."""
    oidc = oidc_client(url)
    extra = {"scopes": list(scopes)} if scopes else {}
    registration = oidc.register_client(clientName="ssocred-test", clientType="public", **extra)
    client = {"clientId": registration["clientId"], "clientSecret": registration["clientSecret"]}
    device = oidc.start_device_authorization(startUrl=START_URL, **client)
    for _ in range(20):
        try:
            token = oidc.create_token(grantType=DEVICE_GRANT, deviceCode=device["deviceCode"], **client)
        except oidc.exceptions.AuthorizationPendingException:
            continue
        return registration, token
    raise AssertionError("device flow was not approved")


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    """A default emulator, stopped after the test."""
    running = fork_emulator()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def shared_emulator() -> Iterator[RunningEmulator]:
    """One default emulator for a whole test module (use ``shared`` to get it reset)."""
    running = fork_emulator()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def shared(shared_emulator: RunningEmulator) -> RunningEmulator:
    """The module's shared emulator, back to default settings and with zeroed counters."""
    shared_emulator.control(**Settings().as_dict())
    shared_emulator.reset()
    return shared_emulator
