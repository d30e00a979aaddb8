"""The AWS adapter's own rules: server text made safe, answers checked, time bounded, CA bundles named."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from ssocred.adapters import aws, server_text
from ssocred.adapters.logs import REDACTOR
from ssocred.errors import EXIT_SERVICE, ConfigError, ServiceError
from tests.support.cli import ACCOUNT, ROLE, login, run
from tests.support.emulator import RunningEmulator
from tests.support.tls import PortalLookalike, TestCA

TOKEN = "aoa" + "Zx9" * 30  # token-shaped: mixed case and digits, long


@pytest.mark.parametrize("text", [
    f"blocked: x-amz-sso_bearer_token: {TOKEN}; user-agent: Botocore/1.44",
    f"Request headers: {{'x-amz-sso_bearer_token': '{TOKEN}', 'Accept': '*/*'}}",
    f"Authorization: Bearer {TOKEN}",
    f'{{"refreshToken": "{TOKEN}"}}',
    f"<html><body><pre>X-Amz-Sso_Bearer_Token: {TOKEN}</pre></body></html>",
    f"echo {TOKEN} back",
    "Authorization: Bearer sh0rt-t0ken",
    "proxy said: basic dXNlcjpwYXNz",
])
def test_no_token_survives_clean(text: str) -> None:
    cleaned = server_text.clean(text)
    assert TOKEN not in cleaned and TOKEN[:20] not in cleaned
    assert "sh0rt-t0ken" not in cleaned and "dXNlcjpwYXNz" not in cleaned
    assert "\n" not in cleaned and len(cleaned) <= server_text.MAX_SERVER_TEXT


def test_clean_keeps_ordinary_words_and_registered_secrets_go() -> None:
    assert server_text.clean("Session token not found or invalid") == "Session token not found or invalid"
    REDACTOR.add("short-but-registered")
    assert server_text.clean("got short-but-registered back") == "got [redacted] back"
    long = server_text.clean("x" * 500)
    assert long.endswith("…") and len(long) == server_text.MAX_SERVER_TEXT


@pytest.mark.parametrize(("headers", "body", "kind"), [
    ({"content-type": "text/html"}, b"<html><body>hi</body></html>", "html"),
    ({"Content-Type": "application/json"}, b"<!DOCTYPE html><html>", "html"),
    ({"content-type": "application/json"}, b'{"roleCredentials": {"accessKeyId": "ASIA', "truncated JSON"),
    ({"content-type": "application/json"}, b"{}", "json"),
    ({}, b"", "empty"),
    ({"content-type": "text/plain"}, b"Bad gateway", "text"),
])
def test_body_kind(headers: dict[str, str], body: bytes, kind: str) -> None:
    assert aws.body_kind(headers, body) == kind


def test_an_answer_without_its_members_says_what_came_back() -> None:
    expect = {"roleCredentials": {"accessKeyId": str, "expiration": int}}
    aws.check_answer({"roleCredentials": {"accessKeyId": "ASIA1", "expiration": 1}}, expect, "sso", "x")
    with pytest.raises(ServiceError, match=r"^the SSO portal answered GetRoleCredentials with an HTML page"):
        aws.check_answer({aws.BODY_KEY: "html"}, expect, "sso", "get_role_credentials")
    with pytest.raises(ServiceError, match=r"with JSON without roleCredentials\.expiration"):
        aws.check_answer({"roleCredentials": {"accessKeyId": "A"}}, expect, "sso", "get_role_credentials")
    with pytest.raises(ServiceError, match=r"with JSON without roleCredentials\.expiration"):
        aws.check_answer({"roleCredentials": {"accessKeyId": "A", "expiration": True}}, expect, "sso", "x")


def test_the_budget_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSOCRED_TIMEOUT", raising=False)
    assert aws.budget() == aws.DEFAULT_BUDGET == 30.0
    monkeypatch.setenv("SSOCRED_TIMEOUT", "4.5")
    assert aws.budget() == 4.5
    for bad in ("0", "-1", "inf", "nan", "soon"):
        monkeypatch.setenv("SSOCRED_TIMEOUT", bad)
        with pytest.raises(ConfigError, match="SSOCRED_TIMEOUT"):
            aws.budget()


def test_ca_bundle_problems(tmp_path: Path) -> None:
    ca = TestCA.create(tmp_path / "ca")
    empty, text = tmp_path / "empty.pem", tmp_path / "text.pem"
    empty.write_text("")
    text.write_text("not a certificate\n")
    assert aws.ca_bundle_problem(str(tmp_path / "none.pem")) == "does not exist"
    assert aws.ca_bundle_problem(str(tmp_path)) == "is a directory, not a file"
    assert aws.ca_bundle_problem(str(empty)) == "is empty"
    assert aws.ca_bundle_problem(str(text)) == "holds no PEM certificate"
    assert aws.ca_bundle_problem(str(ca.pem_path)) is None


@pytest.mark.slow
def test_a_broken_ca_bundle_is_named_by_process(sso: RunningEmulator, tmp_path: Path) -> None:
    """``process`` names the file behind a TLS failure instead of asking for what is already set."""
    login()
    ca, other = TestCA.create(tmp_path / "ca"), TestCA.create(tmp_path / "other", name="some other CA")
    empty, text = tmp_path / "empty.pem", tmp_path / "text.pem"
    empty.write_text("")
    text.write_text("not a certificate\n")
    with PortalLookalike(ca) as portal:
        base = {**os.environ, "AWS_ENDPOINT_URL_SSO": f"https://localhost:{portal.port}"}
        cases = {
            tmp_path / "none.pem": "does not exist",
            tmp_path: "is a directory, not a file",
            empty: "is empty",
            text: "holds no PEM certificate",
        }
        for bundle, problem in cases.items():
            r = run("process", "--sso-session", "corp", "--account-id", ACCOUNT, "--role-name", ROLE,
                    env={**base, "AWS_CA_BUNDLE": str(bundle)})
            assert r.returncode == EXIT_SERVICE, r.stderr
            assert r.stderr == (f"ssocred: the CA bundle AWS_CA_BUNDLE={bundle} {problem}; point AWS_CA_BUNDLE at "
                                "a PEM file with your proxy's CA certificate, or unset it\n")
        wrong = run("process", "--sso-session", "corp", "--account-id", ACCOUNT, "--role-name", ROLE,
                    env={**base, "AWS_CA_BUNDLE": str(other.pem_path)})
        assert wrong.returncode == EXIT_SERVICE
        assert wrong.stderr.startswith(f"ssocred: TLS certificate verification failed for https://localhost:"
                                       f"{portal.port} with the CA bundle AWS_CA_BUNDLE={other.pem_path}; ")
        right = run("process", "--sso-session", "corp", "--account-id", ACCOUNT, "--role-name", ROLE,
                    env={**base, "AWS_CA_BUNDLE": str(ca.pem_path)})
        assert right.returncode == 1  # TLS passed: the look-alike rejects the token, as the portal would
        assert "was rejected by the portal" in right.stderr


@pytest.mark.slow
def test_a_portal_that_never_answers_costs_the_budget_not_minutes(sso: RunningEmulator) -> None:
    from tests.support.hostile import HostileServer

    login()
    with HostileServer("hang") as server:
        env = {**os.environ, "AWS_ENDPOINT_URL_SSO": server.url, "SSOCRED_TIMEOUT": "2"}
        began = time.monotonic()
        r = run("process", "--sso-session", "corp", "--account-id", ACCOUNT, "--role-name", ROLE, env=env)
        took = time.monotonic() - began
    assert r.returncode == EXIT_SERVICE
    assert r.stderr == (f"ssocred: {server.url} did not answer within 2 s; check the network and HTTPS_PROXY; "
                        "SSOCRED_TIMEOUT sets how long to wait\n")
    assert took < 15, took  # generous: two seconds of waiting plus start-up on a busy machine
