"""Shared fixtures: an isolated HOME, a real Secret Service, a running emulator."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ssocred.model.sso import Token
from tests.support.emulator import RunningEmulator, fork_emulator
from tests.support.secret_service import PrivateSecretService

pytest_plugins = ["tests.support.secret_service", "tests.support.daemon", "tests.support.chromium"]

# Hundreds of tests run ssocred without a daemon and expect none to appear; tests/test_autostart.py
# turns it on where it is the subject (CI=true would turn it off anyway, SSOCRED_AUTOSTART=1 overrides).
os.environ["SSOCRED_AUTOSTART"] = "0"

_SCRUB = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_SSO",
    "AWS_ENDPOINT_URL_SSO_OIDC",
    "AWS_ENDPOINT_URL_STS",
    "AWS_CA_BUNDLE",
    "SSH_CONNECTION",
    "SSH_TTY",
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "BROWSER",
    "PYTHON_KEYRING_BACKEND",
)


#: How often a test that failed while a private gnome-keyring died is run again.
KEYRING_RERUNS = 2


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool:
    """Run a test; run it again (at most KEYRING_RERUNS times) only if it failed while gnome-keyring died.

    gnome-keyring aborts now and then when D-Bus clients go away mid-call (an upstream race, see
    ``secret_service.keyring_deaths``): that is the test peer failing, not ssocred. Any other
    failure counts at once. Every rerun is reported as a warning naming the test.
    """
    from _pytest.runner import runtestprotocol

    from tests.support.secret_service import keyring_deaths

    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    for attempt in range(KEYRING_RERUNS + 1):
        before = keyring_deaths()
        reports = runtestprotocol(item, nextitem=nextitem, log=False)
        if attempt == KEYRING_RERUNS or not any(r.failed for r in reports) or keyring_deaths() == before:
            break
        item.warn(pytest.PytestWarning(f"gnome-keyring died during {item.nodeid}; ran it again"))
    for report in reports:
        item.ihook.pytest_runtest_logreport(report=report)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Slow tests first, and each ``long`` one at the head of another worker's share: they start at once on
    different workers (tests/run), and none of them ends the run alone.

    ``--dist worksteal`` first hands worker i the i-th of equal contiguous slices of this order.
    """
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    long = [item for item in items if item.get_closest_marker("long") is not None]
    if workers < 2 or not long:
        return
    order = [item for item in items if item.get_closest_marker("long") is None]
    for i, item in enumerate(long):
        order.insert(round((i % workers) * len(items) / workers) + i // workers, item)
    items[:] = order


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A throw-away HOME with every ssocred and AWS path inside it, and a unique keyring service."""
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    for name in _SCRUB:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / ".aws" / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / ".aws" / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("SSOCRED_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("SSOCRED_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("SSOCRED_LOG_DIR", str(tmp_path / "log"))
    monkeypatch.setenv("SSOCRED_KEYRING_SERVICE", f"ssocred-test-{uuid.uuid4().hex[:12]}")
    monkeypatch.setenv("SSOCRED_AUTOSTART", "0")
    # Never a forwarded daemon another test (or this machine's user) left at the default place.
    monkeypatch.setenv("SSOCRED_FORWARD_SOCKET", str(tmp_path / "no-forwarded-daemon.sock"))
    return home


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningEmulator]:
    """A default emulator; its endpoints are exported for ssocred, boto3 and the AWS CLI."""
    from tests.support.cli import DIRECTORY

    e = fork_emulator("--directory", DIRECTORY)
    for k, v in e.env().items():
        monkeypatch.setenv(k, v)
    yield e
    e.stop()


@pytest.fixture
def sso(
    home: Path, emu: RunningEmulator, secret_service: PrivateSecretService, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path
) -> RunningEmulator:
    """HOME + emulator + real keyring, a ``[sso-session corp]`` config, and BROWSER as a fake browser."""
    from tests.support.cli import session_config, write_config

    secret_service.ensure_running()
    write_config(session_config("corp"))
    browser = Path(__file__).parent / "support" / "browser.py"
    monkeypatch.setenv("BROWSER", f"{sys.executable} {browser} %s")
    monkeypatch.setenv("FAKE_BROWSER_LOG", str(tmp_path / "browser.log"))
    assert os.environ["AWS_ENDPOINT_URL_SSO_OIDC"] == emu.url
    return emu


@pytest.fixture
def logged_in(sso: RunningEmulator) -> Token:
    """``sso`` with session corp logged in (``ssocred login``, as a user runs it); the emulator's counters at 0."""
    from tests.support.cli import login

    return login(sso)
