"""Role lock files do not leak: not for roles that do not exist, not after logout, not after the sweep."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import keyring
import pytest

from ssocred.adapters import locks
from ssocred.adapters.store import Store, is_placeholder
from ssocred.errors import EXIT_ACCESS_DENIED
from ssocred.model import schedule
from tests.support.cli import ACCOUNT, ROLE, login, run
from tests.support.emulator import RunningEmulator
from tests.support.secret_service import store as store  # the function fixture
from tests.test_keyring_chaos import Killed, KillingKeyring
from tests.test_store import make_creds

REPO = Path(__file__).resolve().parents[1]
real = pytest.mark.secret_service


def lock_files(kind: str = "") -> list[str]:
    directory = Path(os.environ["SSOCRED_RUNTIME_DIR"]) / "locks"
    return sorted(p.name for p in directory.glob(f"{kind}*.lock")) if directory.exists() else []


@pytest.mark.slow
def test_an_unassigned_role_leaves_no_lock_file_and_logout_removes_the_others(sso: RunningEmulator) -> None:
    login()
    r = run("process", "--sso-session", "corp", "--account-id", ACCOUNT, "--role-name", "NoSuchRole")
    assert r.returncode == EXIT_ACCESS_DENIED, r.stderr
    assert lock_files("role-") == []
    assert Store().index().creds == ()

    assert run("process", "--sso-session", "corp", "--account-id", ACCOUNT, "--role-name", ROLE).returncode == 0
    assert lock_files("role-") == [Path(Store().role_lock("corp", ACCOUNT, ROLE).lock_file).name]

    r = run("logout")
    assert r.returncode == 0, r.stderr
    assert lock_files("role-") == [] and lock_files("session-") == [] and lock_files("login-") == []


@real
def test_the_sweep_removes_lock_files_of_unindexed_roles_but_not_held_ones(store: Store) -> None:
    store.save_creds("corp", ACCOUNT, "Indexed", make_creds(role="Indexed"))
    for role in ("Indexed", "Gone", "Busy"):
        with store.role_lock("corp", ACCOUNT, role):
            pass
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from ssocred.adapters.store import Store;"
         " l = Store().role_lock('corp', sys.argv[1], 'Busy'); l.acquire();"
         " print('held', flush=True); time.sleep(30)", ACCOUNT],
        env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        planted = Path(store.role_lock("corp", ACCOUNT, "Link").lock_file)
        planted.symlink_to(planted.with_name("elsewhere"))

        report = store.sweep()

        assert report.lock_files == 1
        names = {Path(store.role_lock("corp", ACCOUNT, r).lock_file).name: r for r in ("Indexed", "Busy", "Link")}
        assert set(lock_files("role-")) == set(names)  # "Gone" went; held, indexed and foreign stay
    finally:
        holder.kill()
        holder.wait()
    assert store.sweep().lock_files == 1  # the dead holder's role is unindexed too


@real
def test_delete_creds_removes_the_role_lock_file_unless_a_fetch_holds_it(store: Store) -> None:
    store.save_creds("corp", ACCOUNT, "Admin", make_creds())
    lock = store.role_lock("corp", ACCOUNT, "Admin")
    with lock:
        pass
    store.delete_creds("corp", ACCOUNT, "Admin")
    assert lock_files("role-") == []
    store.save_creds("corp", ACCOUNT, "Admin", make_creds())
    with locks.held(store.role_lock("corp", ACCOUNT, "Admin"), "role"):
        store.delete_creds("corp", ACCOUNT, "Admin")
        assert len(lock_files("role-")) == 1  # a holder needs its file
    assert store.load_creds("corp", ACCOUNT, "Admin") is None


@real
def test_a_role_is_indexed_before_its_first_keyring_write_as_a_placeholder(store: Store) -> None:
    real_backend = keyring.get_keyring()
    keyring.set_keyring(KillingKeyring(real_backend, kill_at=1))
    try:
        with pytest.raises(Killed):
            store.save_creds("corp", ACCOUNT, "Admin", make_creds(pad=3000))
    finally:
        keyring.set_keyring(real_backend)
    entry = store.index().find_creds("corp", ACCOUNT, "Admin")
    assert entry is not None and is_placeholder(entry)
    # Never looks requested (no pre-fetch), never carries times that real credentials have.
    assert not schedule.recently_requested(entry.last_requested_at, time.time(), 24 * 365)
    assert entry.updated_at == entry.expiration == 0.0
    creds = make_creds(pad=3000)
    store.save_creds("corp", ACCOUNT, "Admin", creds, requested=False)
    entry = store.index().find_creds("corp", ACCOUNT, "Admin")
    assert entry is not None and not is_placeholder(entry)
    assert entry.expiration == creds.expiration and entry.last_requested_at == 0.0
    assert store.load_creds("corp", ACCOUNT, "Admin") == creds
