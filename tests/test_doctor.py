"""``ssocred doctor``: one test per diagnosis, through the real command, the emulator and the real keyring."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from ssocred.adapters import notify, service_manager
from ssocred.adapters.store import Store
from tests.support import cli
from tests.support.cli import (
    ACCOUNT,
    OTHER_ACCOUNT,
    REGION,
    ROLE,
    START_URL,
    process_profile,
    run,
    session_config,
    ssocred_argv,
    ssocred_line,
    write_config,
)
from tests.support.emulator import REPO_ROOT, RunningEmulator
from tests.support.secret_service import PrivateSecretService
from tests.support.tls import ConnectProxy, PortalLookalike, TestCA

IDS = ["config", "routing", "keyring", "cache", "token", "registration", "ca_bundle", "endpoint", "access", "daemon",
       "service", "exports"]
PORTAL_HOST = f"portal.sso.{REGION}.amazonaws.com"
LOGIN_FIX = "run: ssocred login --sso-session corp"


def doctor(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """``ssocred doctor --json ARGS``: the parsed report; its exit code must be the process's."""
    r = run("doctor", "--json", *args, env=env, timeout=90)
    assert r.stderr == "", r.stderr
    data: dict[str, Any] = json.loads(r.stdout)
    assert r.returncode == data["exit_code"], (r.returncode, data)
    assert [c["id"] for c in data["checks"]] == IDS
    return data


def checks(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in data["checks"]}


def statuses(data: dict[str, Any]) -> dict[str, str]:
    return {c["id"]: c["status"] for c in data["checks"]}


def login(*options: str) -> None:
    cli.login(options=options)


def environ(**changes: str | None) -> dict[str, str]:
    """The test environment with ``changes`` applied (None removes a variable)."""
    env = dict(os.environ)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def dev_profile(account: str = ACCOUNT, role: str = ROLE, name: str = "dev") -> None:
    write_config(session_config("corp") + process_profile(name, account, role))


def replace_token(**changes: Any) -> None:
    store = Store()
    token = store.load_session("corp")
    assert token is not None
    store.save_session("corp", dataclasses.replace(token, **changes))


def expire_token(**changes: Any) -> None:
    now = time.time()
    replace_token(expires_at=now - 5, issued_at=now - 3605, **changes)


# --- everything fine, output formats -------------------------------------------------------------------


@pytest.mark.slow
def test_a_working_profile_passes_and_prints_no_secret(sso: RunningEmulator) -> None:
    dev_profile()
    login()
    data = doctor("--profile", "dev")
    assert data["ok"] and data["exit_code"] == 0
    assert data["profile"] == "dev" and data["session"] == "corp"
    assert statuses(data) == {
        "config": "pass", "routing": "pass", "keyring": "pass", "cache": "pass", "token": "pass",
        "registration": "pass", "ca_bundle": "pass", "endpoint": "pass", "access": "pass", "daemon": "warn",
        "service": "warn", "exports": "pass",
    }
    c = checks(data)
    assert c["config"]["summary"] == f"profile 'dev' uses sso-session 'corp' ({START_URL}, {REGION})"
    assert re.fullmatch(r"logged in; token valid for (59m|1h 0m)( \d+s)?", c["token"]["summary"])
    assert c["endpoint"]["summary"] == f"{sso.url} answers (HTTP 401)"
    assert c["access"]["summary"] == f"role {ROLE} is assigned to you in account {ACCOUNT}"
    assert c["ca_bundle"]["summary"] == "no CA bundle set: the system/certifi default is used"
    assert all(c[i]["fix"] is None for i in IDS if c[i]["status"] == "pass")

    text = run("doctor", "--profile", "dev")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0] == "ssocred doctor: profile 'dev', sso-session 'corp'"
    assert re.fullmatch(r"PASS  token        logged in; token valid for .+", lines[5])
    shown = [line for line in lines[1:-1] if not line.startswith("      fix: ")]
    assert [line[6:19].strip() for line in shown] == IDS
    assert [line[:6].strip() for line in shown] == ["PASS"] * 9 + ["WARN"] * 2 + ["PASS"]
    assert "      fix: run: ssocred service install (or start ssocred daemon)" in lines
    assert lines[-1] == "no check failed (2 warned)"

    token = Store().load_session("corp")
    assert token is not None and token.refresh_token and token.registration
    for secret in (token.access_token, token.refresh_token, token.registration.client_secret):
        assert secret not in text.stdout + json.dumps(data)


@pytest.mark.slow
def test_json_shape_is_stable(sso: RunningEmulator) -> None:
    for args in (("--profile", "dev"), ("--sso-session", "corp"), ()):
        dev_profile()
        data = doctor(*args)
        assert set(data) == {"profile", "session", "ok", "exit_code", "checks"}
        assert [c["id"] for c in data["checks"]] == IDS
        for check in data["checks"]:
            assert set(check) == {"id", "status", "summary", "fix"}
            assert check["status"] in ("pass", "warn", "fail", "skip")
            assert isinstance(check["summary"], str) and "\n" not in check["summary"] and check["summary"]
            assert check["fix"] is None or (isinstance(check["fix"], str) and "\n" not in check["fix"])
        assert isinstance(data["ok"], bool) and isinstance(data["exit_code"], int)
    # --json prints sorted keys, so the text itself is stable too.
    raw = run("doctor", "--json", "--sso-session", "corp").stdout
    assert raw.index('"checks"') < raw.index('"exit_code"') < raw.index('"ok"') < raw.index('"profile"')


@pytest.mark.slow
def test_no_selection_uses_aws_profile_or_the_only_session(sso: RunningEmulator) -> None:
    dev_profile()
    login()
    only = doctor()
    assert only["profile"] is None and only["session"] == "corp" and only["exit_code"] == 0
    assert checks(only)["routing"]["status"] == "skip"
    assert checks(only)["access"] == {"id": "access", "status": "skip", "fix": None,
                                      "summary": "no account and role to check (select a profile that names them)"}
    by_env = doctor(env=environ(AWS_PROFILE="dev"))
    assert by_env["profile"] == "dev" and checks(by_env)["access"]["status"] == "pass"

    write_config(session_config("corp") + session_config("other"))
    several = doctor()
    c = checks(several)
    assert c["config"]["status"] == "warn" and "several SSO sessions (corp, other)" in c["config"]["summary"]
    assert c["config"]["fix"] == "choose one with --sso-session NAME"
    assert several["session"] is None and several["exit_code"] == 0
    assert {i: c[i]["status"] for i in ("routing", "token", "registration", "endpoint", "access")} == dict.fromkeys(
        ("routing", "token", "registration", "endpoint", "access"), "skip")


# --- 1. config ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "args", "summary", "fix"),
    [
        (None, ("--sso-session", "corp"), "~/.aws/config does not exist",
         "run: ssocred configure, or create it with [sso-session corp] holding sso_start_url = <start URL> "
         "and sso_region = <region>"),
        (f"[sso-session corp]\nsso_region = {REGION}\n", ("--sso-session", "corp"),
         "sso-session 'corp' in ~/.aws/config is missing sso_start_url",
         "add sso_start_url = <start URL> to [sso-session corp]"),
        (f"[sso-session corp]\nsso_start_url = {START_URL}\n", ("--sso-session", "corp"),
         "sso-session 'corp' in ~/.aws/config is missing sso_region",
         "add sso_region = <region> to [sso-session corp]"),
        (f"[profile dev]\nsso_session = corp\nsso_account_id = {ACCOUNT}\nsso_role_name = {ROLE}\n",
         ("--profile", "dev"),
         "profile 'dev' references sso-session 'corp' which is not defined in ~/.aws/config",
         "add an [sso-session corp] section with sso_start_url and sso_region"),
        (session_config("corp"), ("--profile", "nope"), "profile 'nope' is not defined in ~/.aws/config",
         "add a [profile nope] section to it"),
        (f"[sso-session corp]\nsso_start_url = http://d-1.awsapps.com/start\nsso_region = {REGION}\n",
         ("--sso-session", "corp"), "sso_start_url 'http://d-1.awsapps.com/start' does not use https",
         "set sso_start_url = https://<your-portal>.awsapps.com/start"),
    ],
    ids=["no-file", "no-start-url", "no-region", "no-sso-session-section", "no-profile", "http-start-url"],
)
def test_config_problems_name_the_line_to_add(
    home: Path, secret_service: PrivateSecretService, text: str | None, args: tuple[str, ...], summary: str, fix: str
) -> None:
    if text is not None:
        write_config(text)
    data = doctor(*args)
    c = checks(data)
    assert c["config"] == {"id": "config", "status": "fail", "summary": summary, "fix": fix}
    assert data["exit_code"] == 3 and not data["ok"]
    for skipped in ("token", "registration", "access"):
        assert c[skipped]["status"] == "skip", c[skipped]


# --- 2. routing -----------------------------------------------------------------------------------------


def _caller_account(profile: str) -> str:
    """What real boto3 resolves for ``profile`` (credential_process runs ``ssocred process``)."""
    import boto3

    identity = boto3.Session(profile_name=profile, region_name=REGION).client("sts").get_caller_identity()
    return str(identity["Account"])


@pytest.mark.slow
def test_routing_conflict_is_found_and_the_fix_works(sso: RunningEmulator) -> None:
    from botocore.exceptions import BotoCoreError

    both = (f"[profile dev]\ncredential_process = {ssocred_line()} process --sso-session corp "
            f"--account-id {ACCOUNT} --role-name {ROLE}\nsso_account_id = {ACCOUNT}\nsso_role_name = {ROLE}\n")
    write_config(session_config("corp") + both)
    login()
    data = doctor("--profile", "dev")
    c = checks(data)["routing"]
    assert c["status"] == "fail" and data["exit_code"] == 3
    assert c["summary"] == ("[profile dev] has credential_process and sso_account_id and sso_role_name: botocore's "
                            "SSO provider runs first and credential_process is never called")
    assert c["fix"] == ("in [profile dev]: remove sso_account_id and remove sso_role_name (ssocred profiles carry "
                        "the account and role in the credential_process arguments)")
    with pytest.raises(BotoCoreError) as info:  # the diagnosis is real: botocore never asks ssocred
        _caller_account("dev")
    assert "custom-process" not in str(info.value)

    # Here only the sso_* keys name the account and role: removing them would lose them.
    only_session = (f"[profile dev]\ncredential_process = {ssocred_line()} process --profile dev\n"
                    f"sso_session = corp\nsso_account_id = {ACCOUNT}\nsso_role_name = {ROLE}\n")
    write_config(session_config("corp") + only_session)
    c = checks(doctor("--profile", "dev"))["routing"]
    assert c["status"] == "fail"
    assert c["fix"] is not None and c["fix"].startswith(
        "in [profile dev]: rename sso_account_id to ssocred_account_id and rename sso_role_name to ssocred_role_name")

    fixed = only_session.replace("sso_account_id", "ssocred_account_id").replace("sso_role_name", "ssocred_role_name")
    write_config(session_config("corp") + fixed)
    data = doctor("--profile", "dev")
    assert statuses(data)["routing"] == "pass" and statuses(data)["access"] == "pass" and data["exit_code"] == 0
    assert _caller_account("dev") == ACCOUNT


@pytest.mark.slow
def test_native_sso_profile_is_noted(sso: RunningEmulator) -> None:
    write_config(session_config("corp") +
                 f"[profile native]\nsso_session = corp\nsso_account_id = {ACCOUNT}\nsso_role_name = {ROLE}\n")
    login()
    data = doctor("--profile", "native")
    c = checks(data)
    assert c["routing"]["status"] == "warn" and data["exit_code"] == 0
    assert "botocore uses its own SSO provider and the token in ~/.aws/sso/cache" in c["routing"]["summary"]
    assert c["routing"]["fix"] is not None
    assert c["routing"]["fix"].startswith("run: ssocred login --sso-session corp --export-aws-cli-cache")
    assert c["access"]["status"] == "pass"  # the account and role come from the sso_* keys
    login("--export-aws-cli-cache")
    c = checks(doctor("--profile", "native"))
    assert c["routing"]["status"] == "pass" and "which ssocred keeps exported" in c["routing"]["summary"]


# --- 3. keyring -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_locked_keyring(sso: RunningEmulator, secret_service: PrivateSecretService) -> None:
    login()
    secret_service.lock()
    try:
        data = doctor("--sso-session", "corp")
    finally:
        secret_service.unlock()
    c = checks(data)
    assert c["keyring"]["status"] == "fail" and data["exit_code"] == 6
    assert "the OS keyring is locked" in c["keyring"]["summary"]
    assert c["keyring"]["fix"] is not None and "unlock it" in c["keyring"]["fix"]
    assert c["token"] == {"id": "token", "status": "skip", "summary": "the keyring cannot be read (see keyring)",
                          "fix": None}
    assert Store().load_session("corp") is not None  # nothing was touched


@pytest.mark.slow
def test_missing_secret_service(sso: RunningEmulator, tmp_path: Path) -> None:
    data = doctor("--sso-session", "corp", env=environ(DBUS_SESSION_BUS_ADDRESS=f"unix:path={tmp_path}/no-bus"))
    c = checks(data)["keyring"]
    assert c["status"] == "fail" and data["exit_code"] == 6
    assert c["summary"].startswith("no usable OS keyring")
    assert c["fix"] is not None and "PYTHON_KEYRING_BACKEND" in c["fix"]


# --- 4. token -------------------------------------------------------------------------------------------


def test_not_logged_in(sso: RunningEmulator) -> None:
    dev_profile()
    data = doctor("--profile", "dev")
    c = checks(data)
    assert c["token"] == {"id": "token", "status": "fail", "summary": "not logged in to SSO session 'corp'",
                          "fix": LOGIN_FIX}
    assert data["exit_code"] == 1
    assert c["registration"]["status"] == "skip" and c["access"]["status"] == "skip"
    assert c["endpoint"]["status"] == "pass"  # not everything depends on the login


@pytest.mark.slow
def test_expired_token_is_refreshed(sso: RunningEmulator) -> None:
    login()
    expire_token()
    before = sso.stats()["create_token"]["refresh_token"]
    data = doctor("--sso-session", "corp")
    c = checks(data)["token"]
    assert c["status"] == "pass" and c["summary"].startswith("logged in; token refreshed just now, valid for ")
    assert data["exit_code"] == 0
    assert sso.stats()["create_token"]["refresh_token"] == before + 1
    token = Store().load_session("corp")
    assert token is not None and token.remaining(time.time()) > 3000


@pytest.mark.slow
@pytest.mark.parametrize("how", ["revoked", "no-refresh-token"])
def test_expired_token_that_cannot_be_refreshed(sso: RunningEmulator, how: str) -> None:
    login()
    if how == "revoked":
        expire_token()
        sso.revoke()
        summary = "SSO session 'corp' can no longer be refreshed (the refresh token was rejected)"
    else:
        expire_token(refresh_token=None)
        summary = "the token of SSO session 'corp' has expired and cannot be refreshed"
    data = doctor("--sso-session", "corp")
    assert checks(data)["token"] == {"id": "token", "status": "fail", "summary": summary, "fix": LOGIN_FIX}
    assert data["exit_code"] == 1
    assert Store().load_session("corp") is not None  # diagnosed, never deleted


@pytest.mark.slow
def test_token_revoked_on_the_service_side(sso: RunningEmulator) -> None:
    dev_profile()
    login()
    sso.revoke()  # still valid locally: only the portal knows
    data = doctor("--profile", "dev")
    c = checks(data)
    assert c["token"] == {"id": "token", "status": "fail", "fix": LOGIN_FIX, "summary":
                          "the portal rejected the token of SSO session 'corp' (revoked or logged out elsewhere)"}
    assert c["access"]["status"] == "skip" and data["exit_code"] == 1


# --- 5. registration ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_registration_ending_soon_and_the_fix(sso: RunningEmulator) -> None:
    sso.control(registration_ttl=3 * 86400)
    login()
    c = checks(doctor("--sso-session", "corp"))["registration"]
    assert c["status"] == "warn" and c["summary"].startswith("the client registration ends in 2d 23h (")
    assert c["fix"] == f"{LOGIN_FIX} (a login registers a new client when this one has under 7 days left)"
    sso.control(registration_ttl=90 * 86400)
    old = Store().load_session("corp")
    login()  # the fix, as given
    new = Store().load_session("corp")
    assert old and new and old.registration and new.registration
    assert new.registration.client_id != old.registration.client_id
    c = checks(doctor("--sso-session", "corp"))["registration"]
    assert c["status"] == "pass" and c["summary"].startswith("client registration valid for 89d 23h")
    login()  # far from its end, the new registration is reused
    newer = Store().load_session("corp")
    assert newer and newer.registration and newer.registration.client_id == new.registration.client_id


@pytest.mark.slow
def test_expired_registration(sso: RunningEmulator) -> None:
    login()
    token = Store().load_session("corp")
    assert token is not None and token.registration is not None
    replace_token(registration=dataclasses.replace(token.registration, expires_at=time.time() - 60))
    data = doctor("--sso-session", "corp")
    c = checks(data)
    assert c["registration"]["status"] == "fail" and data["exit_code"] == 1
    assert c["registration"]["summary"].endswith("the token cannot be refreshed")
    assert c["registration"]["fix"] == f"{LOGIN_FIX} (a login registers a new client)"
    assert c["token"]["status"] == "pass" and c["token"]["summary"].endswith(
        "; not refreshable: log in again when it expires")


# --- 6. ca_bundle and 7. endpoint ----------------------------------------------------------------------


@pytest.mark.slow
def test_ca_bundle_missing_or_garbage(sso: RunningEmulator, tmp_path: Path) -> None:
    dev_profile()
    login()
    missing = tmp_path / "missing.pem"
    data = doctor("--profile", "dev", env=environ(AWS_CA_BUNDLE=str(missing)))
    c = checks(data)
    assert c["ca_bundle"] == {
        "id": "ca_bundle", "status": "fail", "summary": f"AWS_CA_BUNDLE is {missing}, which does not exist",
        "fix": "point AWS_CA_BUNDLE at your proxy's CA certificate file (PEM), or unset AWS_CA_BUNDLE"}
    assert data["exit_code"] == 3
    assert c["endpoint"]["status"] == "skip" and c["access"]["status"] == "skip"

    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    bad = checks(doctor("--profile", "dev", env=environ(AWS_CA_BUNDLE=str(garbage))))["ca_bundle"]
    assert bad["status"] == "fail"
    assert bad["summary"].startswith(f"AWS_CA_BUNDLE ({garbage}) holds no usable PEM certificate (")

    write_config(session_config("corp") + process_profile("dev", ACCOUNT, ROLE) + f"ca_bundle = {missing}\n")
    bad = checks(doctor("--profile", "dev"))["ca_bundle"]
    assert bad["status"] == "fail"
    assert bad["summary"] == f"ca_bundle in [profile dev] is {missing}, which does not exist"
    assert bad["fix"] == ("point ca_bundle in [profile dev] at your proxy's CA certificate file (PEM), "
                        "or remove ca_bundle from [profile dev]")


@pytest.mark.slow
def test_unreachable_endpoint(sso: RunningEmulator) -> None:
    dev_profile()
    login()
    with socket.socket() as s:  # a port that was free a moment ago and that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    began = time.monotonic()
    data = doctor("--profile", "dev", env=environ(AWS_ENDPOINT_URL_SSO=f"http://127.0.0.1:{port}"))
    assert time.monotonic() - began < 30  # one attempt, not botocore's eight with back-off
    c = checks(data)
    assert c["endpoint"] == {"id": "endpoint", "status": "fail",
                             "summary": f"cannot reach http://127.0.0.1:{port} (EndpointConnectionError)",
                             "fix": "check the network, HTTPS_PROXY and the sso_region"}
    assert c["access"]["status"] == "skip" and data["exit_code"] == 5


@pytest.mark.slow
def test_tls_interception_needs_the_proxy_ca(sso: RunningEmulator, tmp_path: Path) -> None:
    login()
    ca = TestCA.create(tmp_path / "ca")
    with PortalLookalike(ca) as portal, ConnectProxy(portal.port) as proxy:
        env = environ(AWS_ENDPOINT_URL_SSO=None, HTTPS_PROXY=proxy.url, https_proxy=None, NO_PROXY=None,
                      no_proxy=None, ALL_PROXY=None, all_proxy=None)
        untrusted = doctor("--sso-session", "corp", env=env)
        c = checks(untrusted)["endpoint"]
        assert (c["status"], c["summary"]) == ("fail", f"TLS certificate verification failed for https://{PORTAL_HOST}")
        assert c["fix"] is not None and c["fix"].startswith("if a proxy intercepts TLS, set AWS_CA_BUNDLE to ")
        assert untrusted["exit_code"] == 5
        assert proxy.connects and set(proxy.connects) == {f"CONNECT {PORTAL_HOST}:443"}
        assert PORTAL_HOST in portal.server_names and portal.requests == []

        trusted = doctor("--sso-session", "corp", env={**env, "AWS_CA_BUNDLE": str(ca.pem_path)})
        c = checks(trusted)
        assert c["ca_bundle"] == {"id": "ca_bundle", "status": "pass", "fix": None,
                                  "summary": f"AWS_CA_BUNDLE = {ca.pem_path} (1 certificate)"}
        assert c["endpoint"] == {"id": "endpoint", "status": "pass", "fix": None,
                                 "summary": f"https://{PORTAL_HOST} answers (HTTP 401)"}
        assert trusted["exit_code"] == 0
        assert [(m, p.split("?")[0], h) for m, p, h in portal.requests] == [("GET", "/assignment/accounts",
                                                                           PORTAL_HOST)]
        assert set(proxy.connects) == {f"CONNECT {PORTAL_HOST}:443"}


# --- 8. access ------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("account", "role", "summary"),
    [
        (OTHER_ACCOUNT, "AdministratorAccess",
         f"role AdministratorAccess is not assigned to you in account {OTHER_ACCOUNT} (you have: ReadOnlyAccess)"),
        ("333333333333", ROLE,
         f"role {ROLE} is not assigned to you in account 333333333333 (you have no role in that account; "
         f"your accounts: {ACCOUNT}, {OTHER_ACCOUNT})"),
    ],
    ids=["role", "account"],
)
def test_access_denied(sso: RunningEmulator, account: str, role: str, summary: str) -> None:
    dev_profile(account, role)
    login()
    data = doctor("--profile", "dev")
    c = checks(data)["access"]
    assert c["status"] == "fail" and c["summary"] == summary
    assert c["fix"] is not None and "aws sso-admin list-account-assignments" in c["fix"]
    assert "ssocred discover" in c["fix"]
    assert data["exit_code"] == 4
    assert all(s == "pass" for i, s in statuses(data).items() if i not in ("access", "daemon", "service", "exports"))


# --- 9. daemon and 10. service --------------------------------------------------------------------------


@pytest.mark.slow
def test_daemon_running_or_not(sso: RunningEmulator, tmp_path: Path) -> None:
    c = checks(doctor("--sso-session", "corp"))["daemon"]
    assert c == {"id": "daemon", "status": "warn", "summary": "not running: tokens are refreshed only when a "
                 "command needs one", "fix": "run: ssocred service install (or start ssocred daemon)"}
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen([*ssocred_argv(), "daemon", "--no-socket", "--log-file", str(tmp_path / "d.log")],
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while notify.read_status() is None:
            assert proc.poll() is None and time.monotonic() < deadline, "the daemon did not start"
            time.sleep(0.1)
        c = checks(doctor("--sso-session", "corp"))["daemon"]
        assert c["status"] == "pass" and c["summary"].startswith(f"running (pid {proc.pid}, since ")
        assert c["fix"] is None
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=45)


FAKE_SYSTEMCTL = """#!/bin/sh
case "$2" in
    is-active) echo "$FAKE_ACTIVE" ;;
    is-enabled) echo enabled ;;
esac
"""


@pytest.mark.slow
def test_service_installed_or_not(sso: RunningEmulator, home: Path, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    fakebin = tmp_path / "fakebin"
    fakebin.mkdir()
    (fakebin / "systemctl").write_text(FAKE_SYSTEMCTL)
    (fakebin / "systemctl").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fakebin}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ACTIVE", "active")
    c = checks(doctor("--sso-session", "corp"))["service"]
    assert c == {"id": "service", "status": "warn", "summary": "not installed (systemd user units)",
                 "fix": "run: ssocred service install"}
    for path, content in service_manager.rendered("linux").items():
        assert str(path).startswith(str(home))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    c = checks(doctor("--sso-session", "corp"))["service"]
    assert c == {"id": "service", "status": "pass", "fix": None,
                 "summary": "installed; ssocred.socket is active (systemd user units)"}
    monkeypatch.setenv("FAKE_ACTIVE", "inactive")
    c = checks(doctor("--sso-session", "corp"))["service"]
    assert c == {"id": "service", "status": "warn", "summary": "installed, but ssocred.socket is inactive",
                 "fix": "run: systemctl --user enable --now ssocred.socket"}
    path = service_manager.unit_dir() / "ssocred.service"
    path.write_text(path.read_text() + "# changed\n")
    c = checks(doctor("--sso-session", "corp"))["service"]
    assert c["status"] == "warn" and c["summary"] == "installed, but its files are outdated (systemd user units)"
    assert c["fix"] == "run: ssocred service install"
    # A memory-store service is checked against its own files, and the fix keeps its store.
    for path, content in service_manager.rendered("linux", "memory").items():
        path.write_text(content)
    monkeypatch.setenv("FAKE_ACTIVE", "active")
    assert checks(doctor("--sso-session", "corp"))["service"]["status"] == "pass"
    path = service_manager.unit_dir() / "ssocred.service"
    path.write_text(path.read_text() + "# changed\n")
    c = checks(doctor("--sso-session", "corp"))["service"]
    assert (c["status"], c["fix"]) == ("warn", "run: ssocred service install --store memory")
