"""``ssocred discover`` end to end: the real command against a moto server over HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ssocred.errors import EXIT_ACCESS_DENIED, EXIT_CONFIG, EXIT_SERVICE, EXIT_USAGE
from tests.support.cli import run, run_on_a_terminal, ssocred_argv, write_config
from tests.support.moto_server import (
    GONE_USER,
    MANAGEMENT_ACCOUNT,
    REGION,
    MotoServer,
    Org,
    add_permission_set,
    add_user,
    assign,
    build_org,
    create_organization,
    instance,
    limited_keys,
    start_moto_server,
)

PROFILE = "[profile mgmt]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\nregion = {region}\n"
ASSIGNMENT_KEYS = {
    "account_id", "account_name", "permission_set_arn", "permission_set_name", "principal_display_name",
    "principal_found", "principal_id", "principal_name", "principal_type",
}
# What build_org assigns, as table rows: (account, permission set, principal type, principal name).
EXPECTED_ROWS = {
    ("dev", "AdministratorAccess", "USER", "alice@example.com"),
    ("dev", "ReadOnlyAccess", "GROUP", "Developers"),
    ("prod", "ReadOnlyAccess", "USER", "bob@example.com"),
    ("prod", "ReadOnlyAccess", "USER", GONE_USER),
    ("sandbox", "AdministratorAccess", "GROUP", "Developers"),
}


@pytest.fixture(scope="module")
def server() -> Iterator[MotoServer]:
    s = start_moto_server()
    yield s
    s.stop()


@pytest.fixture
def aws(home: Path, server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """An empty moto, every AWS call of ssocred sent to it, and ``[profile mgmt]`` with test keys."""
    server.reset()
    for name in [k for k in os.environ if k.startswith(("AWS_CONTAINER_", "AWS_WEB_IDENTITY", "AWS_ROLE_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
    write_config(PROFILE.format(key="testing", secret="testing", region=REGION))
    return server


def discover_json(*args: str) -> dict[str, Any]:
    r = run("discover", "--json", *args)
    assert r.returncode == 0, r.stderr
    data: dict[str, Any] = json.loads(r.stdout)
    return data


def table_rows(stdout: str) -> list[list[str]]:
    """The rows of the assignment table, split on runs of two or more spaces."""
    import re

    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("ACCOUNT ID"))
    rows = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        rows.append(re.split(r"\s{2,}", line.strip()))
    return rows


def assert_one_line_error(r: Any, code: int) -> str:
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == ""
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("ssocred: ")
    return str(lines[0])


@pytest.mark.slow
def test_text_shows_instance_portal_url_and_assignments(aws: MotoServer) -> None:
    org = build_org(aws)
    r = run("discover", "--profile", "mgmt")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # no progress bar when stderr is not a terminal
    out = r.stdout
    portal = f"https://{org.identity_store_id}.awsapps.com/start"
    assert f"portal URL:         {portal}" in out
    assert f"instance ARN:       {org.instance_arn}" in out
    assert f"identity store id:  {org.identity_store_id}" in out
    assert f"region:             {REGION}" in out
    assert "AdministratorAccess  PT1H (1h)" in out
    assert "ReadOnlyAccess       PT8H (8h)" in out
    ids = dict(org.accounts)
    rows = table_rows(out)
    assert len(rows) == 5
    got = set()
    for account_id, account_name, permission_set, principal_type, principal in rows:
        assert ids[account_name] == account_id
        got.add((account_name, permission_set, principal_type, principal.removesuffix(" (unknown)")))
    assert got == EXPECTED_ROWS
    assert f"{GONE_USER} (unknown)" in out
    assert "1 of 4 principal names could not be read (ResourceNotFoundException)" in out
    assert f"without assignments: {MANAGEMENT_ACCOUNT} (master)" in out
    # Not written: the section is shown for copying, exactly as --write-config would add it.
    assert "Add this to ~/.aws/config (or run again with --write-config):" in out
    assert (f"[sso-session {org.identity_store_id}]\nsso_start_url = {portal}\nsso_region = {REGION}\n"
            "sso_registration_scopes = sso:account:access\n") in out
    assert f"ssocred login --sso-session {org.identity_store_id}" in out


@pytest.mark.slow
def test_json_structure_and_values(aws: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    org = build_org(aws)
    monkeypatch.setenv("AWS_PROFILE", "mgmt")  # the default for --profile
    data = discover_json()
    assert set(data) == {"profile", "instance", "instances", "accounts_source", "accounts", "permission_sets",
                         "assignments", "notes", "sso_session"}
    assert data["profile"] == "mgmt"
    portal = f"https://{org.identity_store_id}.awsapps.com/start"
    assert data["instance"] == {
        "instance_arn": org.instance_arn, "identity_store_id": org.identity_store_id, "region": REGION,
        "portal_url": portal, "name": None, "owner_account_id": MANAGEMENT_ACCOUNT, "status": "ACTIVE",
    }
    assert data["instances"] == [data["instance"]]
    assert data["accounts_source"] == "organizations"
    ids = {**org.accounts, "master": MANAGEMENT_ACCOUNT}
    assert data["accounts"] == [  # by name
        {"id": ids[n], "name": n, "email": f"{n}@example.com", "status": "ACTIVE"}
        for n in ("dev", "master", "prod", "sandbox")
    ]
    assert data["permission_sets"] == [
        {"name": "AdministratorAccess", "arn": org.permission_sets["AdministratorAccess"],
         "session_duration": "PT1H", "session_duration_text": "1h", "description": "Full access, short sessions"},
        {"name": "ReadOnlyAccess", "arn": org.permission_sets["ReadOnlyAccess"],
         "session_duration": "PT8H", "session_duration_text": "8h", "description": "Read everything"},
    ]
    rows = data["assignments"]
    assert all(set(row) == ASSIGNMENT_KEYS for row in rows)
    devs, alice, bob = org.groups["Developers"], org.users["alice@example.com"], org.users["bob@example.com"]
    admin, read = org.permission_sets["AdministratorAccess"], org.permission_sets["ReadOnlyAccess"]
    # Sorted by account name, permission set, principal type, principal name.
    assert [(r["account_id"], r["permission_set_arn"], r["principal_type"], r["principal_id"]) for r in rows] == [
        (org.accounts["dev"], admin, "USER", alice),
        (org.accounts["dev"], read, "GROUP", devs),
        (org.accounts["prod"], read, "USER", GONE_USER),
        (org.accounts["prod"], read, "USER", bob),
        (org.accounts["sandbox"], admin, "GROUP", devs),
    ]
    assert rows[0]["principal_name"] == "alice@example.com"
    assert rows[0]["principal_display_name"] == "Alice Jones"
    assert rows[1]["principal_name"] == "Developers"
    assert (rows[2]["principal_name"], rows[2]["principal_found"]) == (GONE_USER, False)
    assert all(r["principal_found"] for r in rows if r["principal_id"] != GONE_USER)
    assert data["notes"] == ["1 of 4 principal names could not be read (ResourceNotFoundException); shown by id"]
    assert data["sso_session"] == {
        "name": org.identity_store_id, "start_url": portal, "region": REGION,
        "registration_scopes": ["sso:account:access"],
        "config_text": f"[sso-session {org.identity_store_id}]\nsso_start_url = {portal}\nsso_region = {REGION}\n"
        "sso_registration_scopes = sso:account:access\n",
        "written": False, "changed": False, "already_configured_as": [], "path": "~/.aws/config",
    }
    # The calls run on several threads; the output must not depend on which finished first.
    assert discover_json() == data


@pytest.mark.slow
def test_write_config_adds_the_session_and_keeps_the_file(aws: MotoServer, home: Path) -> None:
    from ssocred.adapters import config_file

    org = build_org(aws)
    original = (
        "# admin credentials, keep this comment\n"
        + PROFILE.format(key="testing", secret="testing", region=REGION)
        + "\n[sso-session other]  ; another portal\nsso_start_url = https://d-0000000000.awsapps.com/start\n"
        "sso_region = eu-west-1\n"
    )
    path = write_config(original)
    r = run("discover", "--profile", "mgmt", "--write-config", "--session-name", "corp-admin")
    assert r.returncode == 0, r.stderr
    assert "Wrote [sso-session corp-admin] to ~/.aws/config." in r.stdout
    assert "Add this to" not in r.stdout
    text = path.read_text()
    assert text.startswith(original)
    cfg = config_file.load()
    session = cfg.resolve_session("corp-admin")
    assert session.start_url == f"https://{org.identity_store_id}.awsapps.com/start"
    assert session.region == REGION
    assert session.scopes == ("sso:account:access",)
    assert cfg.sso_session("other").region == "eu-west-1"
    assert cfg.profile("mgmt").region == REGION

    import botocore.session

    botocore_view = botocore.session.Session().full_config["sso_sessions"]["corp-admin"]
    assert botocore_view["sso_start_url"] == session.start_url
    assert botocore_view["sso_region"] == REGION

    again = run("discover", "--profile", "mgmt", "--write-config", "--session-name", "corp-admin")
    assert again.returncode == 0, again.stderr
    assert "already has [sso-session corp-admin] with these settings; nothing changed" in again.stdout
    assert path.read_text() == text

    # Without --write-config, the existing section is pointed out and nothing is written.
    shown = run("discover", "--profile", "mgmt")
    assert shown.returncode == 0, shown.stderr
    assert "~/.aws/config already uses this portal in [sso-session corp-admin]." in shown.stdout
    assert path.read_text() == text


def test_write_config_default_name_is_the_identity_store_id(aws: MotoServer) -> None:
    from ssocred.adapters import config_file

    org = build_org(aws)
    data = discover_json("--profile", "mgmt", "--write-config")
    assert data["sso_session"]["written"] is True
    assert data["sso_session"]["changed"] is True
    assert data["sso_session"]["name"] == org.identity_store_id
    session = config_file.load().resolve_session(org.identity_store_id)
    assert (session.start_url, session.region) == (data["instance"]["portal_url"], REGION)


def test_progress_bar_on_a_terminal(aws: MotoServer, tmp_path: Path) -> None:
    build_org(aws)
    out = tmp_path / "out.json"
    code, terminal = run_on_a_terminal([*ssocred_argv(), "discover", "--profile", "mgmt", "--json"], out)
    assert code == 0, terminal
    # 4 accounts x 2 permission sets, then 4 distinct principals.
    assert "Listing assignments [" in terminal
    assert "] 8/8" in terminal
    assert "Looking up principals [" in terminal and "] 4/4" in terminal
    assert len(json.loads(out.read_text())["assignments"]) == 5


@pytest.mark.slow
def test_all_pages_are_read(aws: MotoServer) -> None:
    """moto pages ListPermissionSets and ListAccountAssignments by 100: go past one page of each."""
    arn, store = instance(aws)
    org = Org(arn, store)
    create_organization(aws, org, [])
    for n in range(101):
        add_permission_set(aws, org, f"Set{n:03d}", "PT2H30M")
    users = [add_user(aws, org, f"user{n:03d}@example.com", f"User {n:03d}") for n in range(105)]
    for user in users:
        assign(aws, org, MANAGEMENT_ACCOUNT, "Set000", "USER", user)
    data = discover_json("--profile", "mgmt")
    assert len(data["permission_sets"]) == 101
    assert {s["session_duration_text"] for s in data["permission_sets"]} == {"2h 30m"}
    assert len(data["assignments"]) == 105
    assert {r["principal_name"] for r in data["assignments"]} == {f"user{n:03d}@example.com" for n in range(105)}
    assert data["notes"] == []


def _provisioned_on_management(aws: MotoServer, org: Org, permission_set: str) -> None:
    # Real IAM Identity Center provisions a permission set into each account it is assigned in;
    # moto does not, and lists only the caller's account for a provisioned set, so provision by hand.
    aws.client("sso-admin").provision_permission_set(
        InstanceArn=org.instance_arn, PermissionSetArn=org.permission_sets[permission_set],
        TargetType="AWS_ACCOUNT", TargetId=MANAGEMENT_ACCOUNT,
    )


@pytest.mark.slow
def test_without_organizations_accounts_come_from_provisioned_permission_sets(aws: MotoServer) -> None:
    arn, store = instance(aws)
    org = Org(arn, store)  # no organization: moto's ListAccounts then answers an empty list
    add_permission_set(aws, org, "ReadOnlyAccess", "PT4H")
    carol = add_user(aws, org, "carol@example.com", "Carol White")
    assign(aws, org, MANAGEMENT_ACCOUNT, "ReadOnlyAccess", "USER", carol)
    _provisioned_on_management(aws, org, "ReadOnlyAccess")
    r = run("discover", "--profile", "mgmt")
    assert r.returncode == 0, r.stderr
    assert table_rows(r.stdout) == [[MANAGEMENT_ACCOUNT, "-", "ReadOnlyAccess", "USER", "carol@example.com"]]
    assert "AWS Organizations listed no accounts: accounts are the ones where permission sets are provisioned" \
        in r.stdout
    data = discover_json("--profile", "mgmt")
    assert data["accounts_source"] == "assignments"
    assert data["accounts"] == [{"id": MANAGEMENT_ACCOUNT, "name": "", "email": "", "status": ""}]


@pytest.mark.slow
def test_organizations_denied_falls_back(aws: MotoServer) -> None:
    org = build_org(aws)
    bob = org.users["bob@example.com"]
    assign(aws, org, MANAGEMENT_ACCOUNT, "ReadOnlyAccess", "USER", bob)
    _provisioned_on_management(aws, org, "ReadOnlyAccess")
    key, secret = limited_keys(aws, ["sso:*", "identitystore:*"])
    write_config(PROFILE.format(key=key, secret=secret, region=REGION))
    with aws.enforce_iam():
        r = run("discover", "--profile", "mgmt", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["accounts_source"] == "assignments"
    assert data["notes"] == [
        "access to AWS Organizations is denied: accounts are the ones where permission sets are provisioned, "
        "without names (read with organizations:ListAccounts for the full list)"
    ]
    assert [(r["account_id"], r["permission_set_name"], r["principal_name"]) for r in data["assignments"]] == [
        (MANAGEMENT_ACCOUNT, "ReadOnlyAccess", "bob@example.com")
    ]
    assert secret not in r.stdout + r.stderr


@pytest.mark.slow
def test_identity_store_denied_shows_principal_ids(aws: MotoServer) -> None:
    org = build_org(aws)
    key, secret = limited_keys(aws, ["sso:*", "organizations:*"])
    write_config(PROFILE.format(key=key, secret=secret, region=REGION))
    with aws.enforce_iam():
        data = discover_json("--profile", "mgmt")
    assert data["accounts_source"] == "organizations"
    rows = data["assignments"]
    assert len(rows) == 5
    assert all(r["principal_name"] == r["principal_id"] and not r["principal_found"] for r in rows)
    assert {r["principal_id"] for r in rows} == {*org.users.values(), *org.groups.values(), GONE_USER}
    assert data["notes"] == ["4 of 4 principal names could not be read (access denied); shown by id"]


@pytest.mark.slow
def test_identity_center_access_denied_is_one_line(aws: MotoServer) -> None:
    build_org(aws)
    key, secret = limited_keys(aws, ["organizations:*", "identitystore:*"])
    write_config(PROFILE.format(key=key, secret=secret, region=REGION))
    with aws.enforce_iam():
        r = run("discover", "--profile", "mgmt")
    line = assert_one_line_error(r, EXIT_ACCESS_DENIED)
    assert line == (
        "ssocred: these credentials (profile 'mgmt') cannot read IAM Identity Center "
        "(sso-admin ListInstances: access denied); use the management account or a delegated administrator"
    )
    assert secret not in r.stderr and key not in r.stderr


@pytest.mark.slow
def test_missing_profile(aws: MotoServer) -> None:
    line = assert_one_line_error(run("discover", "--profile", "nope"), EXIT_CONFIG)
    assert line.startswith("ssocred: profile 'nope' is not defined in ~/.aws/config or ~/.aws/credentials; ")
    assert "add a [profile nope] section" in line


@pytest.mark.slow
def test_no_credentials(aws: MotoServer) -> None:
    write_config(f"[profile mgmt]\nregion = {REGION}\n")
    line = assert_one_line_error(run("discover", "--profile", "mgmt"), EXIT_CONFIG)
    assert line.startswith("ssocred: no AWS credentials for profile 'mgmt'; add aws_access_key_id and "
                           "aws_secret_access_key")
    assert "[profile mgmt]" in line


@pytest.mark.slow
def test_profile_without_region(aws: MotoServer) -> None:
    write_config("[profile mgmt]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    line = assert_one_line_error(run("discover", "--profile", "mgmt"), EXIT_CONFIG)
    assert line == ("ssocred: profile 'mgmt' has no region; add region = <the IAM Identity Center region> "
                    "to [profile mgmt], or set AWS_REGION")


@pytest.mark.slow
def test_unreachable_endpoint(aws: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Nothing listens on the port now: the connection is refused.
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    line = assert_one_line_error(run("discover", "--profile", "mgmt"), EXIT_SERVICE)
    assert line.startswith(f"ssocred: cannot reach http://127.0.0.1:{port} (")


def test_bad_session_name_fails_before_any_call(aws: MotoServer) -> None:
    line = assert_one_line_error(run("discover", "--profile", "mgmt", "--session-name", "a b]"), EXIT_USAGE)
    assert "--session-name 'a b]' is not a usable section name" in line


# The pure parts, without a server.


@pytest.mark.parametrize(
    ("iso", "seconds", "text"),
    [("PT8H", 28800, "8h"), ("PT1H30M", 5400, "1h 30m"), ("PT12H", 43200, "12h"), ("PT45M", 2700, "45m"),
     ("P1DT2H", 93600, "1d 2h"), ("PT0S", 0, "0s"), ("", None, ""), ("8 hours", None, ""), ("PT", None, "")],
)
def test_session_durations(iso: str, seconds: int | None, text: str) -> None:
    from ssocred.model.timefmt import duration_seconds, human_duration

    assert duration_seconds(iso) == seconds
    assert human_duration(iso) == text


@pytest.mark.parametrize(
    ("code", "status", "kind", "words"),
    [
        ("AccessDeniedException", 400, "AccessDenied", "cannot read IAM Identity Center"),
        ("AccessDenied", 403, "AccessDenied", "cannot read IAM Identity Center"),
        ("UnrecognizedClientException", 400, "AccessDenied", "does not accept the credentials"),
        ("ExpiredTokenException", 400, "LoginRequired", "have expired"),
        ("ThrottlingException", 400, "ServiceError", "sso-admin ListInstances failed: ThrottlingException"),
    ],
)
def test_service_errors_are_translated(code: str, status: int, kind: str, words: str) -> None:
    from botocore.exceptions import ClientError

    from ssocred.adapters.admin import translate

    exc = ClientError({"Error": {"Code": code, "Message": "no"}, "ResponseMetadata": {"HTTPStatusCode": status}},
                      "ListInstances")
    err = translate(exc, "sso-admin ListInstances", "mgmt", "https://sso.us-east-1.amazonaws.com")
    assert type(err).__name__ == kind
    assert words in err.line()
