"""``ssocred login`` (PKCE) approved or denied in a real headless Chromium, against the emulator.

Needs Chromium, chromedriver and the ``selenium`` package (see tests/support/chromium.py). Where one
is missing the tests are skipped, unless ``SSOCRED_REQUIRE_BROWSER=1`` (set in CI), which makes them fail.
Everything runs on 127.0.0.1: the emulator, the login's loopback callback and the browser's pages.
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import pytest

from ssocred.adapters.store import Store
from ssocred.errors import EXIT_ACCESS_DENIED
from tests.support.chromium import WAIT, LoginProcess, click_and_reach_callback
from tests.support.cli import session_config, write_config
from tests.support.emulator import RunningEmulator

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

pytestmark = [pytest.mark.browser, pytest.mark.secret_service]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: The Allow button's background in the emulator's approval page.
ALLOW_ORANGE = bytes.fromhex("ff9900")


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


def _callback_prefix(url: str, emu: RunningEmulator) -> str:
    """Check the printed URL and return the loopback callback it redirects to."""
    assert url.startswith(emu.url + "/authorize?"), url
    assert urlsplit(url).hostname == "127.0.0.1"
    redirect_uri = parse_qs(urlsplit(url).query)["redirect_uri"][0]
    parts = urlsplit(redirect_uri)
    assert parts.scheme == "http" and parts.hostname == "127.0.0.1" and parts.port
    assert parts.path == "/oauth/callback"
    return redirect_uri


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

        text = click_and_reach_callback(driver, "allow", callback)
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
        text = click_and_reach_callback(driver, "deny", callback)
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
