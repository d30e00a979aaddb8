"""``ssocred demo`` runs end to end, with the OS keyring or, where there is none, its own store."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import run

pytestmark = pytest.mark.slow  # every test here starts ssocred or its peers as processes


def _check(out: str) -> None:
    for step in range(1, 9):
        assert f"== {step}. " in out
    assert "2 accounts, 4 roles in SSO session 'demo'." in out  # ssocred accounts
    assert "4 profiles for 2 accounts of SSO session 'demo': 4 added" in out  # configure populate
    assert "ssocred_managed = demo" in out
    assert "PASS  access" in out and "no check failed" in out  # doctor
    assert '"Version": 1' in out
    assert "Arn     arn:aws:sts::" in out and ":assumed-role/" in out
    assert "demo: logged in" in out
    assert out.rstrip().endswith("reused the stored token.")


def test_demo_with_the_os_keyring(home: Path, secret_service: object) -> None:
    r = run("demo", timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "credential store: the OS keyring (SecretService Keyring)" in r.stdout
    _check(r.stdout)
    assert sorted(p.name for p in (home / ".aws").iterdir()) == []  # the user's ~/.aws is untouched
    # The demo removes its keyring items again.
    import secretstorage

    conn = secretstorage.dbus_init()
    try:
        services = {
            item.get_attributes().get("service", "")
            for collection in secretstorage.get_all_collections(conn)
            for item in collection.get_all_items()
        }
    finally:
        conn.close()
    assert not [s for s in services if s.startswith("ssocred-demo")]


def test_demo_without_a_keyring(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    r = run("demo", timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "credential store: a throw-away file store in /" in r.stdout
    assert "outside the demo ssocred refuses to run without an OS keyring" in r.stdout
    _check(r.stdout)
    tmp = next(line.split()[-1] for line in r.stdout.splitlines() if "working directory" in line)
    assert not Path(tmp).exists()  # the throw-away directory is gone
