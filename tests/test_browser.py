"""``ssocred login`` (PKCE) approved or denied in a real headless Chromium, against the emulator.

Needs Chromium, chromedriver and the ``selenium`` package. Where one is missing the tests are
skipped, unless ``SSOCRED_REQUIRE_BROWSER=1`` (set in CI), which makes them fail instead.
Everything runs on 127.0.0.1: the emulator, the login's loopback callback and the browser's pages.
"""

from __future__ import annotations

import os
import queue
import shutil
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, NoReturn
from urllib.parse import parse_qs, urlsplit

import pytest

from ssocred.adapters.store import Store
from ssocred.errors import EXIT_ACCESS_DENIED
from tests.support.cli import DIRECTORY, session_config, ssocred_argv, write_config
from tests.support.emulator import RunningEmulator, start_emulator

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

pytestmark = [pytest.mark.browser, pytest.mark.secret_service]

REQUIRE_ENV = "SSOCRED_REQUIRE_BROWSER"
#: Upper bound for any single wait on the browser or the login process.
WAIT = 15.0
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: The Allow button's background in the emulator's approval page.
ALLOW_ORANGE = bytes.fromhex("ff9900")
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


@pytest.fixture
def corp(
    home: Path,
    secret_service: object,
    manual_emu: RunningEmulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> RunningEmulator:
    """HOME, real keyring, manual-approve emulator and a ``[sso-session corp]`` config.

    ``BROWSER`` is set so that the PKCE flow is chosen on a machine without a display; it names
    the scripted stand-in browser with a log, so a login that opens it despite ``--no-browser``
    is noticed.
    """
    write_config(session_config("corp"))
    stand_in = Path(__file__).parent / "support" / "browser.py"
    monkeypatch.setenv("BROWSER", f"{sys.executable} {stand_in} %s")
    monkeypatch.setenv("FAKE_BROWSER_LOG", str(tmp_path / "stand-in-browser.log"))
    monkeypatch.setenv("FAKE_BROWSER_IGNORE", "1")
    return manual_emu


class LoginProcess:
    """``ssocred login --sso-session corp --no-browser`` running in the background."""

    def __init__(self, tmp_path: Path) -> None:
        """Start the login; its stdout is read line by line, its stderr goes to a file."""
        self._stderr_path = tmp_path / "login.stderr"
        self._stderr = self._stderr_path.open("w")
        self.proc = subprocess.Popen(
            [*ssocred_argv(), "login", "--sso-session", "corp", "--no-browser", "--timeout", "60"],
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


def _callback_prefix(url: str, emu: RunningEmulator) -> str:
    """Check the printed URL and return the loopback callback it redirects to."""
    assert url.startswith(emu.url + "/authorize?"), url
    assert urlsplit(url).hostname == "127.0.0.1"
    redirect_uri = parse_qs(urlsplit(url).query)["redirect_uri"][0]
    parts = urlsplit(redirect_uri)
    assert parts.scheme == "http" and parts.hostname == "127.0.0.1" and parts.port
    assert parts.path == "/oauth/callback"
    return redirect_uri


def _click_and_reach_callback(browser: WebDriver, button: str, callback: str) -> str:
    """Click ``#allow`` or ``#deny`` and wait for the loopback page; returns its text."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, WAIT).until(ec.element_to_be_clickable((By.ID, button))).click()
    WebDriverWait(browser, WAIT).until(lambda b: b.current_url.startswith(callback + "?"))
    body = WebDriverWait(browser, WAIT).until(ec.presence_of_element_located((By.TAG_NAME, "body")))
    return str(body.text)


def _png_rows(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and unfiltered scanlines of an 8-bit RGB or RGBA PNG (as Chromium writes them)."""
    assert data.startswith(PNG_SIGNATURE), data[:16]
    header: tuple[int, ...] = ()
    compressed = bytearray()
    pos = len(PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            compressed += chunk
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 3 if colour == 2 else 4
    stride = width * bpp
    raw = zlib.decompress(bytes(compressed))
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        method = raw[start]
        line = bytearray(raw[start + 1 : start + 1 + stride])
        if method == 2:
            line = bytearray((x + up) & 0xFF for x, up in zip(line, prev, strict=True))
        elif method != 0:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                up = prev[i]
                corner = prev[i - bpp] if i >= bpp else 0
                if method == 1:
                    predicted = left
                elif method == 3:
                    predicted = (left + up) // 2
                else:  # Paeth
                    guess = left + up - corner
                    distances = (abs(guess - left), abs(guess - up), abs(guess - corner))
                    predicted = (left, up, corner)[distances.index(min(distances))]
                line[i] = (line[i] + predicted) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, rows


def _count_colour(rows: list[bytes], width: int, rgb: bytes) -> int:
    """How many pixels of the scanlines have exactly the colour ``rgb``."""
    bpp = len(rows[0]) // width
    return sum(1 for row in rows for x in range(0, len(row), bpp) if row[x : x + 3] == rgb)


@pytest.mark.slow
def test_allow_in_chromium_logs_in(driver: WebDriver, corp: RunningEmulator, tmp_path: Path) -> None:
    """Allow in the browser: the code reaches the loopback callback and the token lands in the keyring."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    login = LoginProcess(tmp_path)
    try:
        url = login.authorize_url()
        callback = _callback_prefix(url, corp)
        driver.get(url)
        WebDriverWait(driver, WAIT).until(ec.visibility_of_element_located((By.ID, "allow")))
        assert "Allow access?" in driver.title
        screenshot = tmp_path / "allow.png"
        assert driver.save_screenshot(str(screenshot))
        width, height, rows = _png_rows(screenshot.read_bytes())
        assert (width, height) == tuple(driver.execute_script("return [innerWidth, innerHeight]"))
        # The page's stylesheet paints the Allow button #ff9900: proof that a real rendering happened.
        assert _count_colour(rows, width, ALLOW_ORANGE) > 500, "the Allow button is not in the screenshot"

        text = _click_and_reach_callback(driver, "allow", callback)
        assert "Login complete" in text

        code = login.wait()
        assert code == 0, login.stderr()
        assert "Logged in to SSO session 'corp' (via pkce)" in login.stdout()
    finally:
        login.kill()

    token = Store().load_session("corp")
    assert token is not None and token.refresh_token
    assert corp.stats()["create_token"]["authorization_code"] == 1
    assert not (tmp_path / "stand-in-browser.log").exists(), "--no-browser still opened a browser"


@pytest.mark.slow
def test_deny_in_chromium_refuses_login(driver: WebDriver, corp: RunningEmulator, tmp_path: Path) -> None:
    """Deny in the browser: exit code 4, one line naming access_denied, nothing stored."""
    login = LoginProcess(tmp_path)
    try:
        url = login.authorize_url()
        callback = _callback_prefix(url, corp)
        driver.get(url)
        text = _click_and_reach_callback(driver, "deny", callback)
        assert "not approved" in text

        code = login.wait()
        stderr = login.stderr()
        assert code == EXIT_ACCESS_DENIED, (code, stderr)
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and "access_denied" in lines[0], stderr
    finally:
        login.kill()

    assert Store().load_session("corp") is None
    assert corp.stats()["create_token"]["authorization_code"] == 0
