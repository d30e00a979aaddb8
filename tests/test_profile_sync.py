"""Profiles kept in sync: ``configure populate --keep-in-sync`` opts a session in; the daemon re-runs the
populate with ``--prune`` and sends one notification naming the accounts and roles that came or went.

The daemon test changes the emulator's directory (``POST /_directory``) while the daemon runs, and
reads the notifications through a ``notify-send`` on PATH that records its arguments.
"""

from __future__ import annotations

import configparser
import json
import os
import time
from pathlib import Path

import pytest

from ssocred.model.profile_sync import Role, SyncSettings, settings, summary, values
from tests.support.cli import ACCOUNT, OTHER_ACCOUNT, login, run, session_config, write_config
from tests.support.daemon import RunningDaemon, start_daemon
from tests.support.emulator import RunningEmulator

MINE = "# my own profile, never touched\n[profile mine]\nregion = eu-west-1\n"


def test_settings_are_read_only_when_turned_on() -> None:
    assert settings({}) is None
    assert settings({"ssocred_sync_profiles": "false"}) is None
    assert settings({"ssocred_sync_profiles": "True"}) == SyncSettings()
    chosen = SyncSettings("{account_id}-{role_name}", "eu-west-1", "json")
    assert settings(values(chosen)) == chosen
    assert values(SyncSettings()) == {"ssocred_sync_profiles": "true",
                                      "ssocred_sync_template": "{account_name}.{role_name}"}


def test_the_summary_names_what_came_and_went() -> None:
    text = summary("corp", [Role("333333333333", "Admin", "Sandbox")], [Role("222222222222", "ReadOnly")])
    assert text == "SSO session corp: new: Sandbox (333333333333) Admin; gone: 222222222222 ReadOnly"
    many = summary("corp", [Role(f"{i:012d}", "R") for i in range(10)], [])
    assert many.endswith("and 2 more") and many.count(" R") == 8


def _directory(accounts: list[tuple[str, str, list[str]]]) -> dict[str, object]:
    return {"user": "alice@example.com",
            "accounts": [{"accountId": a, "accountName": n, "roles": roles} for a, n, roles in accounts]}


def _managed() -> dict[str, dict[str, str]]:
    parser = configparser.RawConfigParser()
    parser.read(os.environ["AWS_CONFIG_FILE"])
    return {s.removeprefix("profile "): dict(parser[s]) for s in parser.sections()
            if parser.has_option(s, "ssocred_managed")}


def test_keep_in_sync_cannot_be_a_dry_run(sso: RunningEmulator) -> None:
    write_config(session_config("corp"))
    r = run("configure", "populate", "--keep-in-sync", "--dry-run")
    assert r.returncode == 2 and "cannot go with --dry-run" in r.stderr


@pytest.mark.slow
def test_the_daemon_follows_accounts_that_come_and_go(
        sso: RunningEmulator, tmp_path: Path, daemons: list[RunningDaemon]) -> None:
    config = write_config(MINE + session_config("corp"))
    login()
    sso.set_directory(_directory([(ACCOUNT, "Development", ["AdministratorAccess"]),
                                  (OTHER_ACCOUNT, "Production", ["ReadOnlyAccess"])]))
    r = run("configure", "populate", "--keep-in-sync", "--template", "{account_name}-{role_name}", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["keep_in_sync"] is True
    assert set(_managed()) == {"Development-AdministratorAccess", "Production-ReadOnlyAccess"}
    assert "ssocred_sync_profiles = true\nssocred_sync_template = {account_name}-{role_name}\n" in config.read_text()

    bindir, notes = tmp_path / "bin", tmp_path / "notifications"
    bindir.mkdir()
    (bindir / "notify-send").write_text(f'#!/bin/sh\necho "$@" >> {notes}\n')
    (bindir / "notify-send").chmod(0o755)
    d = start_daemon(daemons, tmp_path, "--sync-interval", "1",
                     env={"PATH": f"{bindir}:{os.environ['PATH']}"})
    d.wait_log("session corp: watching it")
    time.sleep(3)  # a sync with nothing new has run by now: it must write and tell nothing
    assert not notes.exists(), notes.read_text()
    assert "profile sync of session corp" not in d.log_text()
    before = config.stat().st_mtime_ns

    # An administrator removes Production and assigns a Sandbox account.
    sso.set_directory(_directory([(ACCOUNT, "Development", ["AdministratorAccess"]),
                                  ("333333333333", "Sandbox", ["AdministratorAccess"])]))
    d.wait_log(r"profile sync of session corp: 1 added, 0 updated, 0 renamed, 1 removed", timeout=60)
    assert set(_managed()) == {"Development-AdministratorAccess", "Sandbox-AdministratorAccess"}
    assert config.stat().st_mtime_ns != before
    assert config.read_text().startswith(MINE)
    time.sleep(3)  # more syncs, nothing new
    lines = notes.read_text().splitlines()
    assert lines == ["--app-name=ssocred ssocred: your AWS accounts changed SSO session corp: "
                     "new: Sandbox (333333333333) AdministratorAccess; gone: 222222222222 ReadOnlyAccess"], lines
    assert len(d.wait_log(r"profile sync of session corp: \d+ added")) == 1
