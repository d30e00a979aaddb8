"""A real headless Chromium for tests that drive a browser login, and a login running in the background.

The ``chromium``, ``driver`` and ``manual_emu`` fixtures are registered for every test (a plugin in
tests/conftest.py). Chromium, chromedriver and the ``selenium`` package are needed: where one is
missing a test using ``chromium`` or ``driver`` is skipped, unless ``SSOCRED_REQUIRE_BROWSER=1`` (set
in CI), which makes it fail instead. Everything runs on 127.0.0.1.
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, NoReturn

import pytest

from tests.support.cli import DIRECTORY, ssocred_argv
from tests.support.emulator import RunningEmulator, start_emulator

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver


REQUIRE_ENV = "SSOCRED_REQUIRE_BROWSER"
#: Upper bound for any single wait on the browser or the login process.
WAIT = 15.0

_CHROMIUM_NAMES = ("chromium", "chromium-browser")
_CHROMIUM_FALLBACK = "/usr/bin/chromium"
_DRIVER_FALLBACK = "/usr/bin/chromedriver"
_CHROMIUM_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--no-proxy-server",
    # Any name other than the loopback address fails to resolve: nothing else can be contacted.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--window-size=1024,768",
)


@dataclass(frozen=True)
class Chromium:
    """Where the browser and its driver are."""

    binary: str
    driver: str


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"a real headless Chromium is required ({REQUIRE_ENV}=1) but {reason}", pytrace=False)
    pytest.skip(f"no headless Chromium: {reason}")


def _executable(names: tuple[str, ...], fallback: str) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return fallback if os.access(fallback, os.X_OK) else None


@pytest.fixture(scope="session")
def chromium() -> Chromium:
    """Chromium and chromedriver paths, or a skip (a failure under ``SSOCRED_REQUIRE_BROWSER=1``)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        _unavailable("the selenium package is not installed")
    binary = _executable(_CHROMIUM_NAMES, _CHROMIUM_FALLBACK)
    driver = _executable(("chromedriver",), _DRIVER_FALLBACK)
    if binary is None:
        _unavailable("no chromium executable on PATH or at /usr/bin/chromium")
    if driver is None:
        _unavailable("no chromedriver executable on PATH or at /usr/bin/chromedriver")
    return Chromium(binary, driver)


@pytest.fixture
def driver(chromium: Chromium, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebDriver]:
    """A headless Chromium with a throw-away profile, quit after the test."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # never let selenium fetch a driver or a browser
    options = webdriver.ChromeOptions()
    options.binary_location = chromium.binary
    for arg in _CHROMIUM_ARGS:
        options.add_argument(arg)
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    options.add_argument(f"--user-data-dir={profile}")
    service = Service(executable_path=chromium.driver, log_output=str(tmp_path / "chromedriver.log"))
    try:
        browser = webdriver.Chrome(options=options, service=service)
    except Exception as exc:
        _unavailable(f"Chromium did not start ({type(exc).__name__}: {str(exc).strip()[:300]})")
    try:
        browser.set_page_load_timeout(WAIT)
        yield browser
    finally:
        browser.quit()


@pytest.fixture
def manual_emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningEmulator]:
    """An emulator whose ``/authorize`` waits for a click on Allow or Deny."""
    running = start_emulator("--directory", DIRECTORY, "--manual-approve")
    try:
        for key, value in running.env().items():
            monkeypatch.setenv(key, value)
        yield running
    finally:
        running.stop()


class LoginProcess:
    """``ssocred login ARGS --timeout 60`` in the background (ARGS: ``--sso-session corp --no-browser``)."""

    def __init__(self, tmp_path: Path, args: Sequence[str] = ("--sso-session", "corp", "--no-browser")) -> None:
        """Start the login; its stdout is read line by line, its stderr goes to a file."""
        self._stderr_path = tmp_path / "login.stderr"
        self._stderr = self._stderr_path.open("w")
        self.proc = subprocess.Popen(
            [*ssocred_argv(), "login", *args, "--timeout", "60"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env=dict(os.environ),
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stdout: list[str] = []
        assert self.proc.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._stdout.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def authorize_url(self, timeout: float = WAIT) -> str:
        """The ``/authorize`` URL the login prints, waiting up to ``timeout`` seconds for it."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self._lines.get(timeout=max(remaining, 0.0))
            except queue.Empty:
                pytest.fail(f"no /authorize URL within {timeout:g} s; stdout={self.stdout()!r}")
            if line is None:
                self.proc.wait(WAIT)
                pytest.fail(
                    f"login exited ({self.proc.returncode}) before printing an /authorize URL; "
                    f"stdout={self.stdout()!r} stderr={self.stderr()!r}"
                )
            if "/authorize?" in line:
                return line.strip()
            if "device code flow" in line:
                pytest.fail(f"login chose the device code flow instead of PKCE: {line.strip()!r}")

    def wait(self, timeout: float = WAIT) -> int:
        """Wait for the login to exit and for its output to be read; its exit code."""
        code = self.proc.wait(timeout)
        self._reader.join(timeout)
        return code

    def stdout(self) -> str:
        """Everything read from stdout so far."""
        return "".join(self._stdout)

    def stderr(self) -> str:
        """Everything written to stderr so far."""
        self._stderr.flush()
        return self._stderr_path.read_text()

    def kill(self) -> None:
        """Kill the login if it still runs, and release its pipes."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(WAIT)
        self._reader.join(WAIT)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()


def click_and_reach_callback(browser: WebDriver, button: str, callback: str) -> str:
    """Click ``#allow`` or ``#deny`` and wait for the loopback page; returns its text."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, WAIT).until(ec.element_to_be_clickable((By.ID, button))).click()
    WebDriverWait(browser, WAIT).until(lambda b: b.current_url.startswith(callback + "?"))
    body = WebDriverWait(browser, WAIT).until(ec.presence_of_element_located((By.TAG_NAME, "body")))
    return str(body.text)
