"""``ssocred container``: the daemon's container credentials endpoint, used by real SDKs in fresh processes.

The JavaScript SDK check needs ``npm ci`` in ``tests/js`` (``.ci/run`` does it); without it the
test is skipped, unless ``SSOCRED_REQUIRE_NODE_SDK=1`` (set in CI), which makes it fail instead.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from ssocred.daemon.container import parse_listen
from ssocred.errors import UsageError
from ssocred.model.sso import RoleCredentials, container_output
from ssocred.usecases.container import Access, Grants
from tests.support.cli import ACCOUNT, ROLE, login, process_profile, run, session_config, write_config
from tests.support.daemon import RunningDaemon, start_daemon
from tests.support.emulator import RunningEmulator

REQUIRE_ENV = "SSOCRED_REQUIRE_NODE_SDK"
JS_DIR = Path(__file__).parent / "js"
URI = "AWS_CONTAINER_CREDENTIALS_FULL_URI"
TOKEN = "AWS_CONTAINER_AUTHORIZATION_TOKEN"
#: Short-lived role credentials: the SDKs must come back to the daemon for new ones.
CRED_TTL = 8

BOTO3_IDENTITY = """
import json, sys, time
import boto3
session = boto3.session.Session()
sts = session.client("sts", region_name="us-east-1")
def identity():
    answer = sts.get_caller_identity()
    key = session.get_credentials().get_frozen_credentials().access_key
    return {"Account": answer["Account"], "Arn": answer["Arn"], "AccessKeyId": key}
first = identity()
time.sleep(float(sys.argv[1]))
print(json.dumps({"first": first, "second": identity()}))
"""


# --- pure parts ---------------------------------------------------------------------------------------


def test_a_grant_is_one_token_per_role_checked_exactly() -> None:
    grants = Grants()
    role = ("corp", ACCOUNT, ROLE)
    grant = grants.issue(role)
    assert grants.issue(role) == grant
    other = grants.issue(("corp", ACCOUNT, "Admin"))
    assert other.token != grant.token and other.grant_id != grant.grant_id
    assert grants.check(grant.grant_id, grant.token) == role
    assert grants.check(grant.grant_id, other.token) is None
    assert grants.check(grant.grant_id, grant.token + "x") is None
    assert grants.check(grant.grant_id, None) is None
    assert grants.check("nope", grant.token) is None
    assert grants.check(grant.grant_id, "ü\udcff") is None  # any header bytes: no exception
    assert grant.token not in repr(grant) and grant.token not in repr(Access("http://x", grant.token))
    assert grants.revoke("corp", ACCOUNT, ROLE) == 1
    assert grants.check(grant.grant_id, grant.token) is None
    assert grants.issue(role).token != grant.token  # a new grant after a revoke: the old token stays dead
    assert grants.revoke("corp") == 2 and grants.sessions() == set()


def test_the_answer_says_token_not_session_token() -> None:
    creds = RoleCredentials("ASIAEXAMPLE", "secret", "session", 1_900_000_000.0, ACCOUNT, ROLE, 1_899_996_400.0)
    assert container_output(creds) == {"AccessKeyId": "ASIAEXAMPLE", "SecretAccessKey": "secret",
                                       "Token": "session", "Expiration": "2030-03-17T17:46:40Z",
                                       "AccountId": ACCOUNT}


@pytest.mark.parametrize(("text", "expected"), [("127.0.0.1:0", ("127.0.0.1", 0)),
                                                 ("169.254.170.2:80", ("169.254.170.2", 80)),
                                                 ("[::1]:9911", ("::1", 9911))])
def test_listen_addresses(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["0.0.0.0:80", "[::]:80", "localhost:80", "127.0.0.1", "127.0.0.1:70000", ":80"])
def test_listen_addresses_refused(text: str) -> None:
    with pytest.raises(UsageError):
        parse_listen(text)


def test_daemon_refuses_an_unspecified_listen_address() -> None:
    r = run("daemon", "--container-listen", "0.0.0.0:9911")
    assert r.returncode == 2 and "one address" in r.stderr, r.stderr


def test_without_a_daemon_one_line_names_the_fix(home: Path) -> None:
    r = run("container", "--sso-session", "corp", "--account-id", ACCOUNT, "--role-name", ROLE)
    assert r.returncode == 5, (r.returncode, r.stderr)
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1 and "ssocred service install" in r.stderr and "ssocred daemon" in r.stderr


# --- a real daemon ------------------------------------------------------------------------------------


def _serve(sso: RunningEmulator, tmp_path: Path, daemons: list[RunningDaemon]) -> RunningDaemon:
    write_config(session_config("corp") + process_profile("dev", ACCOUNT, ROLE))
    login(sso)
    return start_daemon(daemons, tmp_path, "--verbose")


def _container(*args: str) -> dict[str, str]:
    r = run("container", *args)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert [line.split("=", 1)[0] for line in lines] == [URI, TOKEN], r.stdout
    return dict(line.split("=", 1) for line in lines)


def _get(url: str, token: str | None) -> tuple[int, Any]:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", token)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _fresh_env(variables: dict[str, str], sso: RunningEmulator, tmp_path: Path) -> dict[str, str]:
    """Only the container variables, the STS endpoint and the basics: no config, no profile, no keyring."""
    bare_home = tmp_path / "bare-home"
    bare_home.mkdir(exist_ok=True)
    return {"PATH": os.environ["PATH"], "HOME": str(bare_home), "AWS_ENDPOINT_URL_STS": sso.url, **variables}


def _assert_refreshed(result: dict[str, Any]) -> None:
    first, second = result["first"], result["second"]
    assert first["Account"] == second["Account"] == ACCOUNT, result
    assert first["Arn"].startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/") and ROLE in first["Arn"], result
    assert second["Arn"] == first["Arn"], result
    assert first["AccessKeyId"] != second["AccessKeyId"], result  # new credentials, fetched from the daemon


@pytest.mark.slow
def test_the_endpoint_answers_the_token_alone_and_never_logs_it(
        sso: RunningEmulator, tmp_path: Path, daemons: list[RunningDaemon]) -> None:
    d = _serve(sso, tmp_path, daemons)
    env = _container("--profile", "dev")
    url, token = env[URI], env[TOKEN]
    assert url.startswith("http://127.0.0.1:") and "/role/" in url, url
    port = int(url.split(":")[2].split("/")[0])
    status, body = _get(url, token)
    assert status == 200 and set(body) == {"AccessKeyId", "SecretAccessKey", "Token", "Expiration", "AccountId"}
    assert body["AccountId"] == ACCOUNT
    # The same role gets the same grant, by profile or by name; --json prints the same variables.
    again = json.loads(run("container", "--sso-session", "corp", "--account-id", ACCOUNT, "--role-name", ROLE,
                           "--json").stdout)
    assert again == {URI: url, TOKEN: token}
    assert _get(url, None) == (401, {"message": "unauthorized"})
    assert _get(url, token[:-1] + ("A" if token[-1] != "A" else "B")) == (403, {"message": "forbidden"})
    assert _get(url, "") == (403, {"message": "forbidden"})
    assert _get(url.rsplit("/", 1)[0] + "/0123", token) == (403, {"message": "forbidden"})
    # Loopback only: the port is not open on any other address of this machine.
    for address in _other_addresses():
        with socket.socket() as probe:
            probe.settimeout(2)
            assert probe.connect_ex((address, port)) != 0, address
    revoked = run("container", "--profile", "dev", "--revoke")
    assert revoked.returncode == 0 and "revoked" in revoked.stdout, revoked.stderr
    assert _get(url, token) == (403, {"message": "forbidden"})
    # A new grant works until the session logs out.
    fresh = _container("--profile", "dev")
    assert fresh[TOKEN] != token and _get(fresh[URI], fresh[TOKEN])[0] == 200
    assert run("logout", "--sso-session", "corp").returncode == 0
    assert _get(fresh[URI], fresh[TOKEN]) == (403, {"message": "forbidden"})
    log_text = d.log_text()
    assert "container grant for" in log_text and "listening on http://127.0.0.1:" in log_text, log_text
    assert token not in log_text and fresh[TOKEN] not in log_text
    assert body["SecretAccessKey"] not in log_text and body["Token"] not in log_text


def _other_addresses() -> list[str]:
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
    except OSError:
        return []
    return sorted({str(info[4][0]) for info in infos if not str(info[4][0]).startswith("127.")})[:3]


@pytest.mark.slow
def test_boto3_in_a_fresh_process_follows_the_daemons_refreshes(
        sso: RunningEmulator, tmp_path: Path, daemons: list[RunningDaemon]) -> None:
    sso.control(cred_ttl=CRED_TTL)
    d = _serve(sso, tmp_path, daemons)
    variables = _container("--profile", "dev")
    script = tmp_path / "identity.py"
    script.write_text(BOTO3_IDENTITY)
    r = subprocess.run([sys.executable, str(script), str(CRED_TTL + 1)], env=_fresh_env(variables, sso, tmp_path),
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, (r.stderr[-3000:], d.diagnostics())
    _assert_refreshed(json.loads(r.stdout))
    assert variables[TOKEN] not in d.log_text()


def _node_sdk() -> str:
    """``node``, with the pinned SDK installed beside ``identity.mjs``, or a skip (a failure in CI)."""
    node = shutil.which("node")
    reason = None
    if node is None:
        reason = "node is not on PATH"
    elif not (JS_DIR / "node_modules" / "@aws-sdk" / "client-sts").is_dir():
        reason = "the SDK is not installed: run npm ci in tests/js"
    if reason is not None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"the AWS SDK for JavaScript is required ({REQUIRE_ENV}=1) but {reason}", pytrace=False)
        pytest.skip(reason)
    assert node is not None
    return node


@pytest.mark.slow
def test_the_javascript_sdk_in_a_fresh_process_follows_the_daemons_refreshes(
        sso: RunningEmulator, tmp_path: Path, daemons: list[RunningDaemon]) -> None:
    node = _node_sdk()
    sso.control(cred_ttl=CRED_TTL)
    d = _serve(sso, tmp_path, daemons)
    variables = _container("--profile", "dev")
    r = subprocess.run([node, str(JS_DIR / "identity.mjs"), str(CRED_TTL + 1)],
                       env=_fresh_env(variables, sso, tmp_path), capture_output=True, text=True, timeout=120,
                       check=False)
    assert r.returncode == 0, (r.stderr[-3000:], d.diagnostics())
    _assert_refreshed(json.loads(r.stdout))
    # A wrong token: the SDK gets nothing and says so.
    wrong = {**variables, TOKEN: "not-the-token"}
    r = subprocess.run([node, str(JS_DIR / "identity.mjs")], env=_fresh_env(wrong, sso, tmp_path),
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode != 0 and "AccessKeyId" not in r.stdout, r.stdout


@pytest.mark.slow
def test_a_role_served_to_containers_counts_as_in_use(
        sso: RunningEmulator, tmp_path: Path, daemons: list[RunningDaemon]) -> None:
    from ssocred.adapters.store import Store
    from tests.support.cli import age_last_request

    _serve(sso, tmp_path, daemons)
    variables = _container("--profile", "dev")
    before = age_last_request("corp", ACCOUNT, ROLE, 3600)
    assert _get(variables[URI], variables[TOKEN])[0] == 200
    deadline = time.monotonic() + 10
    while True:
        entry = Store().index().find_creds("corp", ACCOUNT, ROLE)
        assert entry is not None
        if entry.last_requested_at > before + 3000 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert entry.last_requested_at > before + 3000


def test_the_daemon_answers_container_requests_that_carry_no_process_arguments(home: Path) -> None:
    from ssocred.daemon.container import DEFAULT_LISTEN, Endpoint
    from ssocred.daemon.responder import Responder
    from ssocred.socket_protocol import PROTOCOL_VERSION, keyring_service

    responder = Responder()
    endpoint = Endpoint(DEFAULT_LISTEN, responder)
    responder.ops["container"] = responder.ops["container-revoke"] = endpoint.serve_op
    endpoint.grants.issue(("corp", ACCOUNT, ROLE))
    request = {"v": PROTOCOL_VERSION, "op": "container-revoke", "session": "corp", "account": None, "role": None,
               "service": keyring_service(), "backend": ""}
    assert responder.answer(json.dumps(request).encode()) == (0, '{"revoked": 1}\n', None)
    malformed = {**request, "op": "container", "role": ""}
    code, text, _ = responder.answer(json.dumps(malformed).encode())
    assert code == 2 and "malformed" in text
    assert endpoint.address() == DEFAULT_LISTEN  # no grant handed out: nothing listens


@pytest.mark.slow
def test_a_chained_profile_is_served_to_containers(
        sso: RunningEmulator, tmp_path: Path, daemons: list[RunningDaemon]) -> None:
    deploy = "arn:aws:iam::222233334444:role/Deploy"
    write_config(session_config("corp") + process_profile("dev", ACCOUNT, ROLE)
                 + f"[profile chained]\nrole_arn = {deploy}\nsource_profile = dev\n")
    login(sso)
    d = start_daemon(daemons, tmp_path, "--verbose")
    variables = _container("--profile", "chained")
    script = tmp_path / "identity.py"
    script.write_text(BOTO3_IDENTITY)
    r = subprocess.run([sys.executable, str(script), "0"], env=_fresh_env(variables, sso, tmp_path),
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, (r.stderr[-3000:], d.diagnostics())
    first = json.loads(r.stdout)["first"]
    assert first["Account"] == "222233334444", first
    assert first["Arn"] == "arn:aws:sts::222233334444:assumed-role/Deploy/ssocred", first
    assert sso.stats()["operations"]["AssumeRole"] == 1  # the grant fetched them; the SDK's requests used the cache
    revoked = run("container", "--profile", "chained", "--revoke", "--json")
    assert revoked.returncode == 0 and json.loads(revoked.stdout)["revoked"] is True, revoked.stderr
    assert _get(variables[URI], variables[TOKEN])[0] == 403
