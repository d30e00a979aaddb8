"""``ssocred console``: a federated console sign-in link for a role, accepted by the federation endpoint.

The emulator serves ``/federation`` (``getSigninToken`` for credentials it issued, ``login``
redirecting to ``Destination``); ``AWS_ENDPOINT_URL_SIGNIN`` points ssocred at it. Nothing here
follows the redirect to the real console: the test reads the 302 itself.
"""

from __future__ import annotations

import http.client
import os
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from ssocred.adapters import signin
from tests.support.cli import ACCOUNT, ROLE, login, process_profile, run, session_config, write_config
from tests.support.emulator import RunningEmulator


def _get(url: str) -> tuple[int, str | None]:
    """GET ``url`` without following a redirect: (status, Location)."""
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1"
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.request("GET", f"{parts.path}?{parts.query}")
    answer = conn.getresponse()
    answer.read()
    conn.close()
    return answer.status, answer.getheader("Location")


@pytest.fixture
def console_env(sso: RunningEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> RunningEmulator:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SIGNIN", sso.url)
    write_config(session_config("corp") + process_profile("dev", ACCOUNT, ROLE).replace("us-east-1", "eu-west-1"))
    login(sso)
    monkeypatch.setenv("FAKE_BROWSER_IGNORE", "1")  # from now on it records the link; the test opens it
    (tmp_path / "browser.log").unlink(missing_ok=True)  # the login's page is not the console's
    return sso


@pytest.mark.parametrize(("region", "federation", "home"), [
    ("eu-west-1", "https://signin.aws.amazon.com/federation",
     "https://eu-west-1.console.aws.amazon.com/console/home?region=eu-west-1"),
    ("us-gov-west-1", "https://signin.amazonaws-us-gov.com/federation",
     "https://console.amazonaws-us-gov.com/console/home?region=us-gov-west-1"),
    ("cn-north-1", "https://signin.amazonaws.cn/federation",
     "https://console.amazonaws.cn/console/home?region=cn-north-1"),
])
def test_hosts_follow_the_partition(region: str, federation: str, home: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_SIGNIN", raising=False)
    assert signin.federation_url(region) == federation
    assert signin.console_home(region) == home
    monkeypatch.setenv("AWS_ENDPOINT_URL_SIGNIN", "http://127.0.0.1:9/base/")
    assert signin.federation_url(region) == "http://127.0.0.1:9/base/federation"


@pytest.mark.slow
def test_print_gives_a_link_the_federation_endpoint_accepts(console_env: RunningEmulator) -> None:
    r = run("console", "--profile", "dev", "--print")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    url = r.stdout.strip()
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(f"{console_env.url}/federation?")
    assert query["Action"] == ["login"] and query["Issuer"] == ["ssocred"]
    # The profile's region picks the console home.
    assert query["Destination"] == ["https://eu-west-1.console.aws.amazon.com/console/home?region=eu-west-1"]
    assert _get(url) == (302, query["Destination"][0])
    assert console_env.stats()["operations"]["GetRoleCredentials"] == 1  # the role credentials, fetched once

    forged = url.replace("SigninToken=", "SigninToken=x")
    assert _get(forged)[0] == 400


@pytest.mark.slow
def test_a_destination_and_explicit_role_open_in_the_browser(console_env: RunningEmulator, tmp_path: Path) -> None:
    page = f"{console_env.url}/?page=s3"
    r = run("console", "--sso-session", "corp", "--account-id", ACCOUNT, "--role-name", ROLE,
            "--destination", page, "--region", "us-east-1")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    assert r.stderr.startswith(f"Opened the AWS console for {ROLE} in {ACCOUNT}")
    opened = (tmp_path / "browser.log").read_text().split()
    assert len(opened) == 1
    assert _get(opened[0]) == (302, page)


@pytest.mark.slow
def test_without_a_browser_the_link_is_printed(console_env: RunningEmulator) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("BROWSER", "DISPLAY", "WAYLAND_DISPLAY")}
    r = run("console", "--profile", "dev", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stderr.startswith("ssocred: no browser to open (there is no display and BROWSER is not set)")
    assert _get(r.stdout.strip())[0] == 302


@pytest.mark.slow
def test_refused_credentials_are_one_line_without_a_secret(console_env: RunningEmulator) -> None:
    console_env.control(cred_ttl=1)  # the emulator's next credentials end before the sign-in
    r = run("console", "--profile", "dev", "--print", "--region", "us-east-1",
            env={**os.environ, "AWS_ENDPOINT_URL_SIGNIN": console_env.url + "/nowhere"})
    assert r.returncode == 5
    assert r.stdout == "" and len(r.stderr.splitlines()) == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"ssocred: {console_env.url}/nowhere/federation refused the role credentials (HTTP 4")
    assert "SigninToken" not in r.stderr and "sessionToken" not in r.stderr and "ASIA" not in r.stderr
