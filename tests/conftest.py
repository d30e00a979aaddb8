"""Shared fixtures: an isolated HOME, a real Secret Service, a running emulator."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.emulator import RunningEmulator, start_emulator
from tests.support.secret_service import PrivateSecretService

pytest_plugins = ["tests.support.secret_service", "tests.support.daemon"]

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
    return home


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningEmulator]:
    """A default emulator; its endpoints are exported for ssocred, boto3 and the AWS CLI."""
    from tests.support.cli import DIRECTORY

    e = start_emulator("--directory", DIRECTORY)
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
