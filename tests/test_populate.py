"""``ssocred configure populate`` against the emulator: 1,000 profiles, comments kept, idempotent, prune, atomic."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ssocred.errors import EXIT_SERVICE, EXIT_USAGE
from tests.support.cli import (
    ACCOUNT,
    OTHER_ACCOUNT,
    REGION,
    login,
    run,
    run_on_a_terminal,
    session_config,
    ssocred_argv,
    write_config,
)
from tests.support.emulator import RunningEmulator, fork_emulator

USER_TEXT = """\
# My AWS config: hand-written, keep this comment.
[default]
region = eu-west-1   ; inline comment
output = json

# the team's shared profile
[profile legacy-tool]
aws_access_key_id = AKIDEXAMPLE
aws_secret_access_key = not-a-real-secret
region = eu-central-1

"""


@pytest.fixture
def big(
    home: Path, secret_service: object, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[RunningEmulator]:
    """An emulator with 500 accounts × 2 roles, logged in as SSO session ``corp``."""
    e = fork_emulator("--accounts", "500", "--roles", "2", "--seed", "7")
    for k, v in e.env().items():
        monkeypatch.setenv(k, v)
    browser = Path(__file__).parent / "support" / "browser.py"
    monkeypatch.setenv("BROWSER", f"{sys.executable} {browser} %s")
    monkeypatch.setenv("FAKE_BROWSER_LOG", str(tmp_path / "browser.log"))
    write_config(USER_TEXT + session_config("corp"))
    login()
    yield e
    e.stop()


def _config() -> Path:
    return Path(os.environ["AWS_CONFIG_FILE"])


def _populate(*extra: str) -> dict[str, object]:
    r = run("configure", "populate", "--sso-session", "corp", "--json", *extra)
    assert r.returncode == 0, r.stderr
    data: dict[str, object] = json.loads(r.stdout)
    return data


def _profiles_in_botocore() -> dict[str, dict[str, str]]:
    import botocore.session

    session = botocore.session.Session()
    profiles: dict[str, dict[str, str]] = session.full_config["profiles"]
    return profiles


@pytest.mark.slow
@pytest.mark.long
def test_thousand_profiles_load_in_botocore_and_resolve_through_credential_process(big: RunningEmulator) -> None:
    before = _config().read_bytes()
    data = _populate()
    assert data["profiles"] == 1000 and len(data["added"]) == 1000  # type: ignore[arg-type]
    after = _config().read_bytes()
    # The user's text (comments, order, unmanaged profiles, the sso-session) is untouched, byte for byte.
    assert after.startswith(before)
    import botocore.session

    available = set(botocore.session.Session().available_profiles)
    assert set(data["added"]) <= available  # type: ignore[arg-type]
    profiles = _profiles_in_botocore()
    generated = {n: p for n, p in profiles.items() if p.get("ssocred_managed") == "corp"}
    assert len(generated) == 1000
    for p in generated.values():
        assert "sso_account_id" not in p and "sso_role_name" not in p
        assert p["credential_process"].split()[1:3] == ["process", "--sso-session"]
        assert p["region"] == REGION  # the SSO region is the default

    import boto3

    sample = random.Random(1).sample(sorted(generated), 20)
    for name in sample:
        session = boto3.session.Session(profile_name=name)
        ident = session.client("sts").get_caller_identity()
        argv = generated[name]["credential_process"].split()
        account, role = argv[argv.index("--account-id") + 1], argv[argv.index("--role-name") + 1]
        assert ident["Account"] == account
        assert f":assumed-role/{role}/" in ident["Arn"]
        assert session.get_credentials().method == "custom-process"


@pytest.mark.slow
def test_second_run_is_a_no_op(big: RunningEmulator) -> None:
    _populate()
    path = _config()
    text, stat = path.read_bytes(), path.stat()
    data = _populate()
    assert data["changed"] is False
    assert data["added"] == [] and data["removed"] == [] and data["updated"] == []
    assert data["unchanged"] == 1000
    assert path.read_bytes() == text
    assert path.stat().st_mtime_ns == stat.st_mtime_ns and path.stat().st_ino == stat.st_ino  # not even rewritten
    r = run("configure", "populate", "--sso-session", "corp")
    assert r.returncode == 0 and "up to date" in r.stdout


def _directory(accounts: list[tuple[str, str, list[str]]]) -> dict[str, object]:
    return {"user": "alice@example.com",
            "accounts": [{"accountId": a, "accountName": n, "roles": roles} for a, n, roles in accounts]}


@pytest.mark.slow
def test_prune_removes_exactly_the_vanished_profiles(sso: RunningEmulator) -> None:
    write_config(USER_TEXT + session_config("corp"))
    login()
    sso.set_directory(_directory([
        (ACCOUNT, "Development", ["AdministratorAccess", "ReadOnlyAccess"]),
        (OTHER_ACCOUNT, "Production", ["ReadOnlyAccess", "Billing"]),
        ("333333333333", "Sandbox", ["AdministratorAccess"]),
    ]))
    first = _populate()
    assert sorted(first["added"]) == [  # type: ignore[arg-type]
        "Development.AdministratorAccess", "Development.ReadOnlyAccess", "Production.Billing",
        "Production.ReadOnlyAccess", "Sandbox.AdministratorAccess",
    ]
    # An admin removes a role and an account.
    sso.set_directory(_directory([
        (ACCOUNT, "Development", ["AdministratorAccess", "ReadOnlyAccess"]),
        (OTHER_ACCOUNT, "Production", ["ReadOnlyAccess"]),
    ]))
    kept = _populate()
    assert kept["removed"] == [] and kept["changed"] is False  # without --prune nothing goes
    pruned = _populate("--prune")
    assert sorted(pruned["removed"]) == ["Production.Billing", "Sandbox.AdministratorAccess"]  # type: ignore[arg-type]
    profiles = _profiles_in_botocore()
    assert {n for n, p in profiles.items() if p.get("ssocred_managed")} == {
        "Development.AdministratorAccess", "Development.ReadOnlyAccess", "Production.ReadOnlyAccess",
    }
    assert _config().read_text().startswith(USER_TEXT)
    assert "legacy-tool" in profiles


@pytest.mark.slow
def test_dry_run_prints_a_diff_and_writes_nothing(sso: RunningEmulator) -> None:
    # The user's static keys come last, so they are the diff's context lines.
    write_config(session_config("corp") + "\n" + USER_TEXT.rstrip("\n") + "\naws_session_token = tok-value\n")
    login()
    before = _config().read_bytes()
    r = run("configure", "populate", "--sso-session", "corp", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "+[profile Development.AdministratorAccess]" in r.stdout
    assert "+credential_process = " in r.stdout and "nothing written" in r.stdout
    assert " aws_session_token = ****" in r.stdout and " region = eu-central-1" in r.stdout
    assert "tok-value" not in r.stdout and "not-a-real-secret" not in r.stdout
    assert _config().read_bytes() == before


@pytest.mark.slow
def test_template_names_are_safe_and_unmanaged_names_are_left_alone(sso: RunningEmulator) -> None:
    write_config(USER_TEXT + session_config("corp") + "\n[profile 111111111111-ReadOnlyAccess]\nregion = x\n")
    login()
    sso.set_directory(_directory([
        (ACCOUNT, "Dev Team (EU)", ["AdministratorAccess", "ReadOnlyAccess"]),
        (OTHER_ACCOUNT, "Dev Team (EU)", ["AdministratorAccess"]),
    ]))
    data = _populate("--template", "{account_name}/{role_name}@{session}")
    assert sorted(data["added"]) == [  # type: ignore[arg-type]
        "Dev-Team-EU-AdministratorAccess-corp-111111111111",
        "Dev-Team-EU-AdministratorAccess-corp-222222222222",
        "Dev-Team-EU-ReadOnlyAccess-corp",
    ]
    data = _populate("--template", "{account_id}-{role_name}")
    # Renamed in place; the name held by the user's own profile is skipped and that profile untouched.
    assert data["skipped"] == ["111111111111-ReadOnlyAccess"]
    assert sorted(r["to"] for r in data["renamed"]) == [  # type: ignore[union-attr, index]
        "111111111111-AdministratorAccess", "222222222222-AdministratorAccess",
    ]
    profiles = _profiles_in_botocore()
    assert profiles["111111111111-ReadOnlyAccess"] == {"region": "x"}
    r = run("configure", "populate", "--sso-session", "corp", "--template", "{account}.{role_name}")
    assert r.returncode == EXIT_USAGE
    assert r.stderr.count("\n") == 1 and "{account_name}" in r.stderr and "Traceback" not in r.stderr
    r = run("configure", "populate", "--sso-session", "corp", "--region", "eu west 1")
    assert r.returncode == EXIT_USAGE and "not a region name" in r.stderr and r.stderr.count("\n") == 1


@pytest.mark.slow
def test_file_mode_and_symlink_are_kept(sso: RunningEmulator, tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "aws-config"
    real.parent.mkdir()
    real.write_text(USER_TEXT + session_config("corp"))
    real.chmod(0o644)
    _config().unlink(missing_ok=True)
    _config().symlink_to(real)
    login()
    _populate()
    assert _config().is_symlink()
    assert real.stat().st_mode & 0o777 == 0o644
    assert "[profile Production.ReadOnlyAccess]" in real.read_text()


@pytest.mark.slow
def test_throttled_portal_still_lists_everything(sso: RunningEmulator) -> None:
    login()
    sso.set_directory(_directory([(f"{i:012d}", f"Account {i}", ["ReadOnlyAccess"]) for i in range(1, 21)]))
    sso.reset()
    sso.control(throttle_rate=0.25)
    data = _populate()
    stats = sso.stats()
    assert len(data["added"]) == 20  # type: ignore[arg-type]
    assert stats["injected"]["throttle"] > 0  # answered 429 at times, and retried until every account was listed


@pytest.mark.slow
def test_a_failing_account_writes_nothing(sso: RunningEmulator) -> None:
    login()
    before = _config().read_bytes()
    sso.control(fail_rate=1.0)
    r = run("configure", "populate", "--sso-session", "corp", "--prune")
    assert r.returncode == EXIT_SERVICE
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert _config().read_bytes() == before


@pytest.mark.slow
def test_progress_bar_on_a_terminal(big: RunningEmulator, tmp_path: Path) -> None:
    code, tty = run_on_a_terminal([*ssocred_argv(), "accounts", "--sso-session", "corp"], tmp_path / "out")
    assert code == 0
    assert "Listing roles [" in tty and "500/500" in tty
    listed = (tmp_path / "out").read_text()
    assert "Listing roles" not in listed and "500 accounts, 1000 roles" in listed
    r = run("accounts", "--sso-session", "corp")  # not a terminal: no bar
    assert "Listing roles" not in r.stderr


@pytest.mark.slow
def test_kill_9_mid_write_leaves_the_old_or_the_new_file(big: RunningEmulator) -> None:
    # A large user file makes the write window wide enough to land kills inside it.
    old = (USER_TEXT + "".join(f"# note {i}: {'x' * 100}\n" for i in range(20000)) + "\n" + session_config("corp"))
    path = write_config(old)
    _populate()
    new = path.read_text()
    assert new.startswith(old) and new != old
    directory = path.parent
    mid_write = 0
    for _attempt in range(30):
        path.write_text(old)
        for leftover in directory.glob(f".{path.name}.*.tmp"):
            leftover.unlink()
        proc = subprocess.Popen([*ssocred_argv(), "configure", "populate", "--sso-session", "corp"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if any(directory.glob(f".{path.name}.*.tmp")):
                break
            # Writing the large file takes milliseconds: a short pause still sees its temp file, and leaves
            # the CPU to the process being watched.
            time.sleep(0.0005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if any(directory.glob(f".{path.name}.*.tmp")):
            mid_write += 1  # killed between creating the temp file and the rename
        assert path.read_text() in (old, new)
        if mid_write >= 3:
            break
    assert mid_write >= 1, "no kill landed inside the write"


@pytest.mark.slow
def test_role_listing_is_bounded_and_parallel(sso: RunningEmulator) -> None:
    login()
    sso.set_directory(_directory([(f"{i:012d}", f"Account {i}", ["ReadOnlyAccess"]) for i in range(1, 13)]))
    sso.control(latency_ms=100)
    sso.reset()
    r = run("accounts", "--json", "--max-workers", "3")
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["accounts"]) == 12
    assert 2 <= sso.stats()["in_flight_max"] <= 3  # in parallel, never more than asked
    sso.reset()
    assert run("accounts", "--json", "--max-workers", "1").returncode == 0
    assert sso.stats()["in_flight_max"] == 1


def test_rate_limit_keeps_the_pace() -> None:
    from ssocred.usecases.accounts import RateLimit

    limit = RateLimit(100, burst=5)
    start = time.monotonic()
    for _ in range(35):
        limit()
    # A lower bound only: past the burst of 5, 30 calls at 100/s cannot take less than 0.3 s.
    assert time.monotonic() - start >= 0.29
    assert limit.calls == 35


@pytest.mark.slow
def test_parallel_edits_lose_nothing(sso: RunningEmulator) -> None:
    # A long file widens each edit's read-change-write window to a good part of a second.
    notes = "".join(f"# note {i}: {'x' * 100}\n" for i in range(20000))
    write_config(USER_TEXT + notes + session_config("corp") + "\n" + session_config("other"))
    login(session="corp")
    login(session="other")
    # Each process reads, changes and replaces the file: without the lock, one would undo another.
    procs = [
        subprocess.Popen([*ssocred_argv(), "configure", "populate", "--sso-session", session,
                          "--template", "{session}-{account_name}.{role_name}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for session in ("corp", "other") * 4
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    profiles = _profiles_in_botocore()
    managed = sorted(n for n, p in profiles.items() if p.get("ssocred_managed"))
    assert managed == sorted(f"{s}-{n}" for s in ("corp", "other") for n in (
        "Development.AdministratorAccess", "Development.ReadOnlyAccess", "Production.ReadOnlyAccess"))
    assert _config().read_text().startswith(USER_TEXT)
