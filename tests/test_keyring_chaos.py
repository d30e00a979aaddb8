"""Writers killed at random moments against a real Secret Service: nothing of a session survives logout.

Writer processes save a large session and large role credentials in a loop through ``Store``
(under the same locks ssocred takes) and are SIGKILLed at random moments. The keyring is then
listed through the Secret Service itself, not through ssocred.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import keyring
import pytest
from keyring.backend import KeyringBackend

from ssocred.adapters.chunkjournal import Generation, Journal, journal_path
from ssocred.adapters.keyring_io import chunk_name
from ssocred.adapters.store import Store, is_placeholder
from ssocred.errors import StoreError
from ssocred.model.sso import Token, token_to_dict
from tests.support import secret_service as support
from tests.support.cli import run, session_config, write_config
from tests.support.secret_service import PrivateSecretService
from tests.support.secret_service import store as store  # the function fixture
from tests.test_store import make_creds, make_token

REPO = Path(__file__).resolve().parents[1]
ACCOUNT = "111122223333"
KILLS = 36
real = pytest.mark.secret_service
slow = pytest.mark.slow

_WRITER = """
import os, secrets, sys, time
from ssocred.adapters import locks
from ssocred.model.sso import Registration, RoleCredentials, Token
from ssocred.adapters.store import Store

session, account, expired = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
store = Store()

def pad(n):
    return secrets.token_urlsafe(n)[:n]

def token():
    now = time.time()
    reg = Registration("cid-" + pad(20), "CLIENTSECRET" + pad(secrets.randbelow(3000) + 500),
                       now + 86400, ("sso:account:access",), ("refresh_token",))
    expires = now - 60 if expired else now + 3600
    return Token("ACCESSTOKEN" + pad(secrets.randbelow(4000) + 1500), expires, now - 120,
                 "https://d-1234567890.awsapps.com/start", "eu-west-1", "REFRESHTOKEN" + pad(600), reg)

def creds(role):
    now = time.time()
    return RoleCredentials("ASIA" + pad(16), "SECRETKEY" + pad(30), "SESSIONTOKEN" + pad(secrets.randbelow(5000) + 100),
                           now + 3600, account, role, now)

roles = ["Admin", "ReadOnly", "New" + str(os.getpid())]
print("ready", flush=True)
while True:
    with locks.held(store.session_lock(session), "session"):
        store.save_session(session, token())
    for role in roles:
        with locks.held(store.role_lock(session, account, role), "role"):
            store.save_creds(session, account, role, creds(role))
"""


# --- helpers -----------------------------------------------------------------------------------


#: A private Secret Service of the test's own: a gnome-keyring crash cannot take the session's with it.
own_secret_service = support.exported_secret_service


def aborted(svc: PrivateSecretService) -> str | None:
    """How gnome-keyring-daemon ended, when it did."""
    status = svc.daemon.poll()
    return None if status is None else f"gnome-keyring-daemon ended (status {status}): {support._log_tail(svc.root)}"


@pytest.fixture
def secret_service() -> Iterator[PrivateSecretService]:
    """A Secret Service of this test's own (it overrides the session's for this module).

    gnome-keyring 42 now and then aborts under rapid connect-read-disconnect cycles (GLib's
    "invoke_get_property_in_idle_cb: assertion failed", a known upstream race), and these tests
    make many: should it happen, only this test fails, saying so, and later tests are unharmed.
    """
    with own_secret_service() as svc:
        yield svc
        assert aborted(svc) is None, aborted(svc)


def listed(svc: PrivateSecretService, service: str) -> dict[str, str]:
    """Every item of ``service`` in the Secret Service: username -> secret."""
    import secretstorage

    with closing(svc.connection()) as conn:
        items = secretstorage.search_items(conn, {"service": service})
        return {item.get_attributes()["username"]: item.get_secret().decode() for item in items}


def of_session(items: dict[str, str], session: str) -> list[str]:
    return sorted(u for u in items if u.startswith((f"session:{session}", f"creds:{session}:")))


def orphan_parts(items: dict[str, str]) -> list[str]:
    """Parts that the current head of their item does not reference."""
    orphans = []
    for username in items:
        match = re.fullmatch(r"(.+)#([0-9a-f]{8})\.(\d+)", username)
        if match is None:
            continue
        head = items.get(match.group(1), "")
        current = json.loads(head)["id"] if head.startswith('{"chunks"') else None
        if match.group(2) != current:
            orphans.append(username)
    return sorted(orphans)


def expired_token(pad: int = 0) -> Token:
    return dataclasses.replace(make_token(pad=pad), expires_at=time.time() - 60)


def role_lock_files() -> list[str]:
    directory = Path(os.environ["SSOCRED_RUNTIME_DIR"]) / "locks"
    return sorted(p.name for p in directory.glob("role-*.lock")) if directory.exists() else []


def chaos(session: str, kills: int = KILLS, *, expired: bool = False, writers: int = 3) -> int:
    """SIGKILL ``writers`` concurrent writer processes at random moments, restarting them, ``kills`` times.

    Returns how many kills hit a running writer; a writer that failed on its own fails the test.
    """
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    rng = random.Random()
    started = landed = 0
    errors: list[str] = []
    guard = threading.Lock()

    def one_writer() -> None:
        nonlocal started, landed
        while True:
            with guard:
                if started >= kills:
                    return
                started += 1
                # Every sixth writer lives longer: on a loaded machine a write takes more than 0.6 s,
                # and the tests need some writes to have finished among the torn ones.
                life = 2.5 if started % 6 == 0 else 0.6
            proc = subprocess.Popen(
                [sys.executable, "-c", _WRITER, session, ACCOUNT, "1" if expired else "0"],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            assert proc.stdout is not None and proc.stderr is not None
            ready = proc.stdout.readline()
            time.sleep(rng.uniform(0.0, life))
            running = proc.poll() is None
            proc.kill()
            proc.wait()
            with guard:
                landed += running
                if ready != "ready\n" or not running:
                    errors.append(proc.stderr.read()[-2000:])

    threads = [threading.Thread(target=one_writer) for _ in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert errors == []
    return landed


@pytest.fixture
def kept(store: Store) -> Iterator[dict[str, Any]]:
    """Another session, large and small items, that no chaos or logout of 'chaos' may touch."""
    token, big, small = make_token(pad=2500), make_creds(pad=3000), make_creds(role="Small")
    store.save_session("keep", token)
    store.save_creds("keep", ACCOUNT, "Admin", big)
    store.save_creds("keep", ACCOUNT, "Small", small)
    yield {"token": token, "big": big, "small": small}


def assert_kept(store: Store, kept: dict[str, Any]) -> None:
    assert store.load_session("keep") == kept["token"]
    assert store.load_creds("keep", ACCOUNT, "Admin") == kept["big"]
    assert store.load_creds("keep", ACCOUNT, "Small") == kept["small"]


# --- chaos, then logout ---------------------------------------------------------------------------


@slow
@real
def test_after_a_chaos_run_delete_session_leaves_no_item(
    store: Store, secret_service: PrivateSecretService, kept: dict[str, Any]
) -> None:
    assert chaos("chaos") >= 30
    before = listed(secret_service, store.service)
    assert of_session(before, "chaos"), "the writers stored something"
    print(f"\nafter {KILLS} kills: {len(of_session(before, 'chaos'))} items of the session, "
          f"{len(orphan_parts(before))} of them unreferenced parts")
    indexed = [c.key for c in store.index().creds_of("chaos")]
    assert indexed and all(Path(store.role_lock(*key).lock_file).exists() for key in indexed)

    store.delete_session("chaos")

    after = listed(secret_service, store.service)
    assert of_session(after, "chaos") == []
    assert not any(c.session == "chaos" for c in store.index().creds) and "chaos" not in store.index().sessions
    assert not any(g.key.startswith(("session:chaos", "creds:chaos:")) for g in Journal(
        journal_path(store.service), 10).read())
    assert_kept(store, kept)
    assert not any(Path(store.role_lock(*key).lock_file).exists() for key in indexed)
    # A role whose first write died before it was indexed leaves only a lock file; the sweep takes it.
    store.sweep()
    assert role_lock_files() == []


@slow
@real
def test_after_a_chaos_run_the_logout_command_leaves_no_item(
    home: Path, store: Store, secret_service: PrivateSecretService, kept: dict[str, Any]
) -> None:
    write_config(session_config("chaos") + session_config("keep"))
    assert chaos("chaos", expired=True) >= 30  # expired: logout has no portal to tell
    assert of_session(listed(secret_service, store.service), "chaos")

    r = run("logout", "--sso-session", "chaos")

    assert r.returncode == 0, r.stderr
    assert r.stdout == "Logged out of 'chaos'.\n"
    assert of_session(listed(secret_service, store.service), "chaos") == []
    assert "chaos" not in store.stored_sessions()
    assert_kept(store, kept)


@pytest.mark.slow
@real
def test_logout_all_covers_sessions_the_index_does_not_name(
    home: Path, store: Store, secret_service: PrivateSecretService
) -> None:
    write_config(session_config("a") + session_config("b") + session_config("never"))
    store.save_session("a", expired_token())  # expired: logout has no portal to tell
    store.write_session("b", expired_token(pad=2500))  # stored, but its process died before indexing it
    assert set(store.index().sessions) == {"a"}

    r = run("logout", "--all")

    assert r.returncode == 0, r.stderr
    assert r.stdout == "Logged out of 'a'.\nLogged out of 'b'.\n"  # "never" had nothing to remove
    assert listed(secret_service, store.service) == {}
    assert role_lock_files() == []
    assert not list((Path(os.environ["SSOCRED_RUNTIME_DIR"]) / "locks").glob("session-*.lock"))


# --- the sweep --------------------------------------------------------------------------------------


@slow
@real
def test_the_sweep_removes_orphaned_generations_and_nothing_else(
    store: Store, secret_service: PrivateSecretService, kept: dict[str, Any]
) -> None:
    assert chaos("chaos") >= 30
    before = listed(secret_service, store.service)
    orphans = orphan_parts(before)
    assert store.sweep().parts == 0  # within the grace period every generation may be a write in progress

    report = store.sweep(grace=0)

    after = listed(secret_service, store.service)
    assert sorted(set(before) - set(after)) == orphans
    assert report.parts == len(orphans)
    assert orphan_parts(after) == []
    assert store.sweep(grace=0).parts == 0
    # A reader still reads every current value.
    assert store.load_session("chaos") is not None
    for entry in store.index().creds_of("chaos"):
        loaded = store.load_creds(*entry.key)
        assert loaded is not None or is_placeholder(entry)
    assert_kept(store, kept)
    journal = Journal(journal_path(store.service), 10).read()
    heads = {g.key: json.loads(after[g.key])["id"] for g in journal}
    assert all(g.id == heads[g.key] for g in journal), "only current generations stay recorded"


@real
def test_a_write_in_progress_is_not_swept(store: Store, secret_service: PrivateSecretService) -> None:
    token = make_token(pad=2500)
    store.save_session("corp", token)
    journal = Journal(journal_path(store.service), 10)
    # A writer that has recorded its generation and stored its parts, not yet its head.
    journal.add(Generation("session:corp", "feedf00d", 2, time.time()))
    for i in (1, 2):
        keyring.set_password(store.service, chunk_name("session:corp", "feedf00d", i), "part")
    assert store.sweep(grace=60).parts == 0
    assert raw_names(secret_service, store, "feedf00d") == 2
    assert store.sweep(grace=0).parts == 2
    assert raw_names(secret_service, store, "feedf00d") == 0
    assert store.load_session("corp") == token


def raw_names(svc: PrivateSecretService, store: Store, chunk_id: str) -> int:
    return sum(f"#{chunk_id}." in u for u in listed(svc, store.service))


@slow
@real
def test_readers_racing_a_writer_process_and_the_sweep_see_old_or_new(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The most connection churn of this module. gnome-keyring 42 does not always survive it: it
    # aborts (see ``secret_service``) or for a moment cannot find its own default collection or a
    # just-stored item, and keyring then fails the call. Such a run proves nothing either way, so
    # it is run again on a fresh Secret Service, at most 3 times; a wrong value or a "corrupt"
    # read fails at once.
    flakes = []
    for attempt in range(3):
        with own_secret_service() as svc:
            monkeypatch.setenv("SSOCRED_STATE_DIR", str(tmp_path / f"state{attempt}"))
            monkeypatch.setenv("SSOCRED_RUNTIME_DIR", str(tmp_path / f"run{attempt}"))
            monkeypatch.setenv("SSOCRED_KEYRING_SERVICE", f"ssocred-test-race-{attempt}")
            keyring.set_keyring(svc.keyring())
            try:
                race(Store(), svc, tmp_path / f"values{attempt}.json")
            except (KeyringFlake, StoreError) as exc:
                if isinstance(exc, StoreError) and not _flake(exc.message) and aborted(svc) is None:
                    raise
                flakes.append(aborted(svc) or str(exc))
                print(f"\nattempt {attempt + 1}, the Secret Service failed: {flakes[-1]}")
                continue
            assert aborted(svc) is None, aborted(svc)
            return
    pytest.fail(f"the Secret Service failed in all 3 attempts; the last time: {flakes[-1]}")


class KeyringFlake(Exception):
    """The Secret Service itself failed a call (not a wrong value, not a corrupt item)."""


def _flake(message: str) -> bool:
    return message.startswith("the OS keyring failed to")


def race(store: Store, secret_service: PrivateSecretService, path: Path) -> None:
    """A writer process alternates two chunked values while this process reads and sweeps."""
    values = [make_token(pad=1800), make_token(pad=4200)]  # 3 and 6 parts
    path.write_text(json.dumps([token_to_dict(v) for v in values]))
    store.save_session("race", values[0])
    # Leftovers of writers killed an hour ago, for the sweep to remove while the writer runs.
    journal = Journal(journal_path(store.service), 10)
    for stale in ("000000a1", "000000a2", "000000a3"):
        journal.add(Generation("session:race", stale, 2, time.time() - 3600))
        for i in (1, 2):
            keyring.set_password(store.service, chunk_name("session:race", stale, i), "old part")
    script = (
        "import json, os, sys, time\n"
        "from ssocred.model.sso import token_from_dict\n"
        "from ssocred.adapters.store import Store\n"
        "values = [token_from_dict(v) for v in json.load(open(sys.argv[1]))]\n"
        "store, i, end = Store(), 0, time.time() + 90\n"
        "while time.time() < end and not os.path.exists(sys.argv[2]):\n"
        "    i += 1\n"
        "    store.save_session('race', values[i % 2])\n"
        "    time.sleep(0.02)\n"
        "print(i)\n"
    )
    stop = path.with_suffix(".stop")  # the writer writes until the reader has raced it enough
    writer = subprocess.Popen([sys.executable, "-c", script, str(path), str(stop)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    reads = sweeps = swept = 0
    try:
        deadline = time.monotonic() + 5
        # At least 5 s, 10 reads and 2 sweeps, all while the writer writes (a loaded machine reads slowly).
        while writer.poll() is None and (time.monotonic() < deadline or reads < 10 or sweeps < 2):
            assert store.load_session("race") in values
            reads += 1
            time.sleep(0.02)  # a reader in a tight loop mostly measures gnome-keyring's own races
            if reads % 5 == 0:
                swept += store.sweep(grace=60).parts  # the writer's own generations are all younger
                sweeps += 1
    finally:
        stop.touch()
        out, err = writer.communicate(timeout=60)
    last = (err.strip().splitlines() or [""])[-1]
    if writer.returncode != 0 and _flake(last.removeprefix("ssocred.errors.StoreError: ")):
        raise KeyringFlake(last)
    # The Secret Service is slow (tens of ms per call, more under load): few rounds, each checked.
    assert writer.returncode == 0 and int(out) >= 4 and reads >= 10 and sweeps >= 2, err
    assert swept == 6
    assert store.load_session("race") in values
    # Whatever the writer left (a removal gnome-keyring failed) is journaled, so the sweep takes it.
    store.sweep(grace=0)
    assert orphan_parts(listed(secret_service, store.service)) == []


# --- a kill at every step of a write, deterministically ---------------------------------------------


class Killed(BaseException):
    """Stands for SIGKILL: raised at a chosen keyring call, it skips everything after it."""


class KillingKeyring(KeyringBackend):
    """The real Secret Service, with the process "killed" at the n-th change (set or delete)."""

    priority = -1  # never picked by keyring's own detection

    def __init__(self, real: KeyringBackend, kill_at: int) -> None:
        super().__init__()
        self.real, self.kill_at, self.changes = real, kill_at, 0

    def _change(self) -> None:
        self.changes += 1
        if self.changes == self.kill_at:
            raise Killed

    def get_password(self, service: str, username: str) -> str | None:
        return self.real.get_password(service, username)

    def set_password(self, service: str, username: str, password: str) -> None:
        self._change()
        self.real.set_password(service, username, password)

    def delete_password(self, service: str, username: str) -> None:
        self._change()
        self.real.delete_password(service, username)


@slow
@real
@pytest.mark.parametrize("what", ["session", "creds"])
def test_a_kill_at_any_step_of_a_write_leaves_old_or_new_and_logout_removes_all(
    store: Store, secret_service: PrivateSecretService, what: str
) -> None:
    real_backend = keyring.get_keyring()

    def save(value: Any) -> None:
        if what == "session":
            store.save_session("corp", value)
        else:
            store.save_creds("corp", ACCOUNT, "Admin", value)

    def load() -> Any:
        return store.load_session("corp") if what == "session" else store.load_creds("corp", ACCOUNT, "Admin")

    def make(pad: int) -> Any:
        return make_token(pad=pad) if what == "session" else make_creds(pad=pad)

    steps = []
    # First write, plain to chunked, chunked to plain, chunked to chunked with another part count.
    for old_pad, new_pad in ((None, 2600), (10, 1200), (2600, 10), (1200, 2600)):
        kill_at, survived = 1, False
        while not survived:
            old, new = (make(old_pad) if old_pad is not None else None), make(new_pad)
            if old is not None:
                save(old)
            keyring.set_keyring(KillingKeyring(real_backend, kill_at))
            try:
                save(new)
                survived = True  # kill_at is past the write's last change: every step was tried
            except Killed:
                pass
            finally:
                keyring.set_keyring(real_backend)
            where = f"{old_pad} -> {new_pad}, killed at change {kill_at}"
            assert load() in (old, new), where
            if what == "creds":
                assert store.index().find_creds("corp", ACCOUNT, "Admin") is not None, where
            store.delete_session("corp")
            assert listed(secret_service, store.service) == {}, where
            kill_at += 1
        steps.append(kill_at - 2)
    assert min(steps) >= 2 and max(steps) >= 6, steps
