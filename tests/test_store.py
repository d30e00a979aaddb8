"""The token store against a real Secret Service (gnome-keyring on a private D-Bus session).

Only the backends that a Secret Service cannot play (Windows' size limit, a keyring that
never answers, one that is missing or fails oddly) are small in-memory classes here.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail, null
from keyring.errors import InitError, KeyringLocked, PasswordDeleteError, PasswordSetError

from ssocred.adapters.keyring_io import CHUNK_LIMIT, split_value, stored_size
from ssocred.adapters.store import CredsEntry, SessionEntry, Store
from ssocred.errors import StoreError
from ssocred.model.sso import Registration, RoleCredentials, Token
from tests.support.secret_service import PrivateSecretService
from tests.support.secret_service import store as store  # the function fixture

REPO = Path(__file__).resolve().parents[1]
real = pytest.mark.secret_service


# --- helpers ---------------------------------------------------------------------------------


def make_token(pad: int = 0) -> Token:
    """A token with unmistakable secrets; ``pad`` extra characters in each to force chunking."""
    now = time.time()
    extra = secrets.token_urlsafe(pad)[:pad] if pad else ""
    reg = Registration(
        client_id="cid-" + uuid.uuid4().hex,
        client_secret="CLIENTSECRET" + secrets.token_urlsafe(24) + extra,
        expires_at=now + 90 * 86400,
        scopes=("sso:account:access",),
        grant_types=("authorization_code", "refresh_token"),
    )
    return Token(
        access_token="ACCESSTOKEN" + secrets.token_urlsafe(24) + extra,
        expires_at=now + 3600,
        issued_at=now,
        start_url="https://d-1234567890.awsapps.com/start",
        region="eu-west-1",
        refresh_token="REFRESHTOKEN" + secrets.token_urlsafe(24) + extra,
        registration=reg,
    )


def make_creds(account: str = "111122223333", role: str = "Admin", pad: int = 0) -> RoleCredentials:
    now = time.time()
    return RoleCredentials(
        access_key_id="ASIA" + secrets.token_hex(8).upper(),
        secret_access_key="SECRETKEY" + secrets.token_urlsafe(30),
        session_token="SESSIONTOKEN" + secrets.token_urlsafe(200) + "x" * pad,
        expiration=now + 3600,
        account_id=account,
        role_name=role,
        issued_at=now,
    )


def secrets_of(obj: Token | RoleCredentials) -> list[str]:
    if isinstance(obj, Token):
        assert obj.refresh_token and obj.registration
        return [obj.access_token, obj.refresh_token, obj.registration.client_secret]
    return [obj.access_key_id, obj.secret_access_key, obj.session_token]


def assert_no_secret(err: BaseException, values: list[str]) -> None:
    """Neither the message nor anything chained to it quotes a secret (or a tell-tale piece of one)."""
    texts = [str(err), repr(err)]
    if isinstance(err, StoreError):
        texts.append(err.line())
    for linked in (err.__cause__, err.__context__):
        if linked is not None:
            texts += [str(linked), repr(linked)]
    for value in values:
        for text in texts:
            assert value[:16] not in text


def raw(store: Store, username: str) -> str | None:
    return keyring.get_password(store.service, username)


def chunk_names(store: Store, key: str) -> list[str]:
    head = json.loads(raw(store, key) or "{}")
    return [f"{key}#{head['id']}.{i}" for i in range(1, head["chunks"] + 1)]


class MemoryKeyring(KeyringBackend):
    """In-memory items with Windows Credential Manager's limit (2,560 bytes of UTF-16)."""

    priority = -1  # never picked by keyring's own detection
    blob_limit: int | None = 2560

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        if self.blob_limit is not None and len(password.encode("utf-16-le")) > self.blob_limit:
            raise PasswordSetError("The stub received bad data")
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.items.pop((service, username), None) is None:
            raise PasswordDeleteError("not found")


class BlockingKeyring(MemoryKeyring):
    """Never answers until released, like a keyring waiting on an unlock prompt nobody sees."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def get_password(self, service: str, username: str) -> str | None:
        self.release.wait(30)
        return None


class RaisingKeyring(MemoryKeyring):
    """Fails every call with the given exception."""

    def __init__(self, exc: BaseException | None = None) -> None:
        super().__init__()
        self.exc = exc or RuntimeError("unset")

    def get_password(self, service: str, username: str) -> str | None:
        raise self.exc

    def set_password(self, service: str, username: str, password: str) -> None:
        raise self.exc


@pytest.fixture
def backend_swap() -> Iterator[Any]:
    """Set a keyring backend for one test; the previous one comes back afterwards."""
    before = keyring.get_keyring()
    yield keyring.set_keyring
    keyring.set_keyring(before)


@pytest.fixture
def bare_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend_swap: Any) -> Store:
    """A Store with private directories, for tests that bring their own backend."""
    monkeypatch.setenv("SSOCRED_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("SSOCRED_RUNTIME_DIR", str(tmp_path / "run"))
    return Store(f"ssocred-test-{uuid.uuid4().hex}")


# --- the real Secret Service -------------------------------------------------------------------


@real
def test_backend_is_the_secret_service_here_and_in_child_processes(store: Store) -> None:
    assert store.backend_name() == "SecretService Keyring"
    code = "import keyring; k = keyring.get_keyring(); print(type(k).__module__, type(k).__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["keyring.backends.SecretService", "Keyring"]


@real
def test_session_round_trip_and_index(store: Store) -> None:
    assert store.load_session("corp") is None
    token = make_token()
    before = time.time()
    store.save_session("corp", token)
    assert store.load_session("corp") == token
    entry = store.index().sessions["corp"]
    assert isinstance(entry, SessionEntry)
    assert entry.name == "corp" and entry.expires_at == token.expires_at and entry.refreshable
    assert token.registration and entry.registration_expires_at == token.registration.expires_at
    assert before <= entry.updated_at <= time.time()
    newer = make_token()
    store.save_session("corp", newer)
    assert store.load_session("corp") == newer
    assert set(store.index().sessions) == {"corp"}


@real
def test_creds_round_trip_and_index(store: Store) -> None:
    assert store.load_creds("corp", "111122223333", "Admin") is None
    creds = make_creds()
    store.save_creds("corp", "111122223333", "Admin", creds)
    assert store.load_creds("corp", "111122223333", "Admin") == creds
    assert store.load_creds("corp", "111122223333", "ReadOnly") is None
    (entry,) = store.index().creds
    assert isinstance(entry, CredsEntry)
    assert entry.key == ("corp", "111122223333", "Admin") and entry.expiration == creds.expiration
    store.touch_creds("corp", "111122223333", "Admin", when=entry.last_requested_at + 60)
    assert store.index().creds[0].last_requested_at == entry.last_requested_at + 60


@pytest.mark.slow
@real
def test_large_items_are_chunked_in_the_secret_service(store: Store) -> None:
    big = make_token(pad=1500)
    assert stored_size(json.dumps(big.access_token)) > CHUNK_LIMIT
    store.save_session("big", big)
    head = raw(store, "session:big") or ""
    assert head.startswith('{"chunks":')
    first = chunk_names(store, "session:big")
    assert len(first) >= 3
    for name in first:
        assert stored_size(raw(store, name) or "x" * 5000) <= CHUNK_LIMIT
    assert store.load_session("big") == big

    bigger = make_token(pad=2500)
    store.save_session("big", bigger)
    assert store.load_session("big") == bigger
    assert all(raw(store, name) is None for name in first), "the previous parts are removed"
    second = chunk_names(store, "session:big")

    small = make_token()
    store.save_session("big", small)
    assert store.load_session("big") == small
    assert all(raw(store, name) is None for name in second)

    store.save_session("big", bigger)
    third = chunk_names(store, "session:big")
    large_creds = make_creds(pad=3000)
    store.save_creds("big", "111122223333", "Admin", large_creds)
    assert store.load_creds("big", "111122223333", "Admin") == large_creds
    creds_parts = chunk_names(store, "creds:big:111122223333:Admin")
    store.delete_session("big")
    for name in ["session:big", *third, "creds:big:111122223333:Admin", *creds_parts]:
        assert raw(store, name) is None


@pytest.mark.slow
@real
def test_readers_see_old_or_new_while_a_writer_replaces_a_chunked_item(store: Store) -> None:
    values = [make_token(pad=1800), make_token(pad=2600)]
    store.save_session("race", values[0])
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            store.save_session("race", values[i % 2])

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            assert store.load_session("race") in values
    finally:
        stop.set()
        thread.join()


@real
def test_delete_session_removes_its_creds_and_index_entries(store: Store) -> None:
    store.save_session("corp", make_token())
    store.save_session("other", make_token())
    store.save_creds("corp", "111122223333", "Admin", make_creds())
    store.save_creds("corp", "444455556666", "ReadOnly", make_creds("444455556666", "ReadOnly"))
    kept = make_creds("777788889999", "Admin")
    store.save_creds("other", "777788889999", "Admin", kept)

    store.delete_session("corp")

    assert store.load_session("corp") is None
    assert store.load_creds("corp", "111122223333", "Admin") is None
    assert store.load_creds("corp", "444455556666", "ReadOnly") is None
    assert raw(store, "creds:corp:111122223333:Admin") is None
    assert store.load_creds("other", "777788889999", "Admin") == kept
    index = store.index()
    assert set(index.sessions) == {"other"}
    assert [c.key for c in index.creds] == [("other", "777788889999", "Admin")]
    store.delete_session("corp")  # deleting what is gone is fine


@real
def test_delete_creds(store: Store) -> None:
    store.save_creds("corp", "111122223333", "Admin", make_creds())
    store.save_creds("corp", "111122223333", "ReadOnly", make_creds(role="ReadOnly"))
    store.delete_creds("corp", "111122223333", "Admin")
    assert store.load_creds("corp", "111122223333", "Admin") is None
    assert store.load_creds("corp", "111122223333", "ReadOnly") is not None
    assert [c.role_name for c in store.index().creds] == ["ReadOnly"]
    store.delete_creds("corp", "111122223333", "Admin")


@real
def test_index_holds_no_secret_and_is_private(store: Store) -> None:
    token, creds = make_token(pad=1200), make_creds()
    store.save_session("corp", token)
    store.save_creds("corp", "111122223333", "Admin", creds)
    path = store.index_path()
    data = path.read_bytes()
    assert b"corp" in data and b"111122223333" in data
    for value in secrets_of(token) + secrets_of(creds):
        assert value[:16].encode() not in data
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    for name in os.listdir(path.parent):
        assert stat.S_IMODE((path.parent / name).stat().st_mode) & 0o077 == 0, name


@pytest.mark.slow
@real
def test_sixteen_processes_each_saving_creds_lose_no_index_entry(store: Store) -> None:
    script = (
        "import sys, time\n"
        "from ssocred.model.sso import RoleCredentials\n"
        "from ssocred.adapters.store import Store\n"
        "i, start = int(sys.argv[1]), float(sys.argv[2])\n"
        "account = f'{i:012d}'\n"
        "now = time.time()\n"
        "c = RoleCredentials(f'ASIA{i:04d}', 'k' * 40, 't' * 300, now + 3600, account, 'Role', now)\n"
        "while time.time() < start:\n"
        "    time.sleep(0.002)\n"
        "Store().save_creds('corp', account, 'Role', c)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.time() + 1.0
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(i), str(start)], env=env, stderr=subprocess.PIPE)
        for i in range(16)
    ]
    errors = [p.communicate(timeout=60)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0] * 16, errors
    accounts = sorted(c.account_id for c in store.index().creds)
    assert accounts == [f"{i:012d}" for i in range(16)]
    for account in accounts:
        loaded = store.load_creds("corp", account, "Role")
        assert loaded is not None and loaded.account_id == account


@real
def test_reads_take_no_lock(store: Store) -> None:
    store.save_session("corp", make_token())
    result: list[object] = []
    with store.session_lock("corp"), store.role_lock("corp", "111122223333", "Admin"):
        reader = threading.Thread(
            target=lambda: result.extend([store.load_session("corp"), store.load_creds("corp", "1", "R")])
        )
        reader.start()
        reader.join(5)
    assert not reader.is_alive() and result[0] is not None and result[1] is None


@real
def test_locks_have_safe_names_in_a_private_directory(store: Store) -> None:
    odd = store.session_lock("../../etc/passwd x")
    path = Path(odd.lock_file)
    assert path.parent == Path(os.environ["SSOCRED_RUNTIME_DIR"]) / "locks"
    assert re.fullmatch(r"session-[A-Za-z0-9._-]+-[0-9a-f]{16}\.lock", path.name)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    names = {
        Path(lock.lock_file).name
        for lock in (
            store.session_lock("a/b"),
            store.session_lock("a_b"),
            store.login_lock("a/b"),
            store.role_lock("a", "b", "c"),
            store.role_lock("a:b", "", "c"),
        )
    }
    assert len(names) == 5
    assert store.session_lock("a/b").lock_file == store.session_lock("a/b").lock_file
    legacy = store.login_lock("https://d-1234567890.awsapps.com/start")
    with legacy:
        assert stat.S_IMODE(Path(legacy.lock_file).stat().st_mode) == 0o600


@real
def test_locked_keyring_is_an_error_and_keeps_the_item(
    store: Store, secret_service: PrivateSecretService
) -> None:
    token = make_token()
    store.save_session("corp", token)
    secret_service.lock()
    try:
        for call in (
            lambda: store.load_session("corp"),
            lambda: store.save_session("corp", make_token()),
            lambda: store.delete_session("corp"),
        ):
            with pytest.raises(StoreError, match="locked") as info:
                call()
            assert "unlock" in info.value.line()
            assert_no_secret(info.value, secrets_of(token))
    finally:
        secret_service.unlock()
    assert store.load_session("corp") == token


@pytest.mark.slow
@real
@pytest.mark.parametrize(
    "stored",
    [
        "not json at all",
        '{"accessToken": "ACCESSTOKENnotquiteacompletetoken"}',
        '["a list"]',
        '{"chunks":2,"id":"deadbeef","sha256":"00"}',
    ],
)
def test_corrupt_session_is_an_error_and_is_kept(store: Store, stored: str) -> None:
    keyring.set_password(store.service, "session:corp", stored)
    with pytest.raises(StoreError) as info:
        store.load_session("corp")
    assert info.value.line() == (
        "the stored item session:corp is corrupt; run: ssocred logout --sso-session corp and log in again"
    )
    assert_no_secret(info.value, ["ACCESSTOKENnotquiteacompletetoken"])
    assert raw(store, "session:corp") == stored
    store.delete_session("corp")  # what logout does: a corrupt item can still be removed
    assert raw(store, "session:corp") is None


@pytest.mark.slow
@real
def test_missing_or_altered_chunk_is_corrupt_and_nothing_is_deleted(store: Store) -> None:
    token = make_token(pad=2000)
    store.save_session("corp", token)
    parts = chunk_names(store, "session:corp")
    keyring.delete_password(store.service, parts[1])
    with pytest.raises(StoreError, match="session:corp is corrupt") as info:
        store.load_session("corp")
    assert_no_secret(info.value, secrets_of(token))
    assert raw(store, "session:corp") is not None and raw(store, parts[0]) is not None

    creds = make_creds(pad=3000)
    store.save_creds("corp", "111122223333", "Admin", creds)
    parts = chunk_names(store, "creds:corp:111122223333:Admin")
    keyring.set_password(store.service, parts[0], "x" * 10)
    with pytest.raises(StoreError, match="creds:corp:111122223333:Admin is corrupt") as info:
        store.load_creds("corp", "111122223333", "Admin")
    assert_no_secret(info.value, secrets_of(creds))
    assert raw(store, parts[0]) == "x" * 10


@real
def test_corrupt_index_is_an_error(store: Store) -> None:
    store.save_session("corp", make_token())
    store.index_path().write_text("{broken")
    with pytest.raises(StoreError, match=r"index .* is corrupt"):
        store.index()
    assert store.load_session("corp") is not None  # the keyring itself is unaffected


@pytest.mark.slow
@real
def test_the_chunk_journal_records_current_generations_privately_and_without_secrets(store: Store) -> None:
    from ssocred.adapters.chunkjournal import journal_path

    token, creds = make_token(pad=2500), make_creds(pad=3000)
    store.save_session("corp", token)
    store.save_creds("corp", "111122223333", "Admin", creds)
    path = journal_path(store.service)
    assert path.parent == store.index_path().parent and path.name.startswith("chunks-ssocred-test-")
    data = json.loads(path.read_bytes())
    recorded = {(g["key"], g["id"], g["chunks"]) for g in data["generations"]}
    heads = {key: json.loads(raw(store, key) or "{}") for key in ("session:corp", "creds:corp:111122223333:Admin")}
    assert recorded == {(key, head["id"], head["chunks"]) for key, head in heads.items()}
    for value in secrets_of(token) + secrets_of(creds):
        assert value[:16].encode() not in path.read_bytes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    store.save_session("corp", make_token())  # plain now: the chunked generation and its record go
    assert {g["key"] for g in json.loads(path.read_bytes())["generations"]} == {"creds:corp:111122223333:Admin"}
    store.delete_session("corp")
    assert json.loads(path.read_bytes())["generations"] == []


@pytest.mark.slow
@real
def test_items_written_before_the_journal_are_still_read_replaced_and_deleted(store: Store) -> None:
    import hashlib

    from ssocred.adapters.keyring_io import chunk_name
    from ssocred.model.sso import token_to_dict

    token = make_token(pad=2500)
    value = json.dumps(token_to_dict(token), separators=(",", ":"), ensure_ascii=True)
    parts = split_value(value)
    for i, part in enumerate(parts, start=1):
        keyring.set_password(store.service, chunk_name("session:corp", "0badc0de", i), part)
    head = {"chunks": len(parts), "id": "0badc0de", "sha256": hashlib.sha256(value.encode()).hexdigest()}
    keyring.set_password(store.service, "session:corp", json.dumps(head, separators=(",", ":")))
    assert store.load_session("corp") == token
    newer = make_token(pad=2600)
    store.save_session("corp", newer)
    assert store.load_session("corp") == newer
    assert all(raw(store, chunk_name("session:corp", "0badc0de", i)) is None for i in range(1, len(parts) + 1))
    for i, part in enumerate(parts, start=1):  # once more in the old format, then deleted
        keyring.set_password(store.service, chunk_name("session:corp", "0badc0de", i), part)
    keyring.set_password(store.service, "session:corp", json.dumps(head, separators=(",", ":")))
    store.delete_session("corp")
    assert raw(store, "session:corp") is None
    assert all(raw(store, chunk_name("session:corp", "0badc0de", i)) is None for i in range(1, len(parts) + 1))


# --- backends a Secret Service cannot play -----------------------------------------------------


def test_store_service_name_comes_from_argument_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSOCRED_KEYRING_SERVICE", raising=False)
    assert Store().service == "ssocred"
    monkeypatch.setenv("SSOCRED_KEYRING_SERVICE", "from-env")
    assert Store().service == "from-env"
    assert Store("explicit").service == "explicit"


def test_split_value_respects_utf8_and_utf16_sizes() -> None:
    for value in ["a" * 4321, "é" * 1500 + "a" * 700, "😀" * 1200, ""]:
        parts = split_value(value)
        assert "".join(parts) == value
        assert all(stored_size(p) <= CHUNK_LIMIT for p in parts)


def test_chunks_fit_windows_credential_manager(bare_store: Store, backend_swap: Any) -> None:
    backend = MemoryKeyring()
    backend_swap(backend)
    with pytest.raises(PasswordSetError):
        backend.set_password("x", "y", "a" * 1281)  # the limit is real: 2,562 bytes in UTF-16
    token, creds = make_token(pad=2500), make_creds(pad=4000)
    bare_store.save_session("corp", token)
    bare_store.save_creds("corp", "111122223333", "Admin", creds)
    assert bare_store.load_session("corp") == token
    assert bare_store.load_creds("corp", "111122223333", "Admin") == creds
    names = sorted(u for _, u in backend.items)
    assert sum(n.startswith("session:corp#") for n in names) >= 3
    assert all(stored_size(v) <= CHUNK_LIMIT for v in backend.items.values())
    bare_store.delete_session("corp")
    assert backend.items == {}
    assert bare_store.index().sessions == {} and bare_store.index().creds == ()


@pytest.mark.parametrize("chosen", [fail.Keyring, null.Keyring], ids=["fail", "null"])
def test_no_usable_backend_is_an_error_and_nothing_is_written(
    bare_store: Store, backend_swap: Any, chosen: type[KeyringBackend]
) -> None:
    backend_swap(chosen())
    token = make_token()
    calls = [
        bare_store.backend_name,
        lambda: bare_store.load_session("corp"),
        lambda: bare_store.save_session("corp", token),
        lambda: bare_store.load_creds("corp", "111122223333", "Admin"),
        lambda: bare_store.delete_session("corp"),
    ]
    for call in calls:
        with pytest.raises(StoreError, match="no usable OS keyring") as info:
            call()
        assert "gnome-keyring" in info.value.line() and "PYTHON_KEYRING_BACKEND" in info.value.line()
        assert_no_secret(info.value, secrets_of(token))
    assert not bare_store.index_path().exists()


def test_a_keyring_that_never_answers_times_out(bare_store: Store, backend_swap: Any) -> None:
    backend = BlockingKeyring()
    backend_swap(backend)
    store = Store(bare_store.service, timeout=0.3)
    try:
        started = time.monotonic()
        with pytest.raises(StoreError) as info:
            store.load_session("corp")
        assert time.monotonic() - started < 3
        assert info.value.message.startswith("the OS keyring did not answer within 0.3 s")
        assert "unlock it" in info.value.line()
        with pytest.raises(StoreError, match="did not answer"):
            store.save_session("corp", make_token())
    finally:
        backend.release.set()


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (KeyringLocked("Failed to unlock the collection!"), "is locked"),
        (
            InitError("Failed to create the collection: no D-Bus."),
            r"failed to read .*InitError: Failed to create",
        ),
        (
            RuntimeError("boom ACCESSTOKENfromabackendmessage"),
            r"failed to read session:corp \(RuntimeError\)",
        ),
    ],
    ids=["locked", "init", "other"],
)
def test_backend_failures_are_distinct_store_errors(
    bare_store: Store, backend_swap: Any, exc: BaseException, expected: str
) -> None:
    backend_swap(RaisingKeyring(exc))
    with pytest.raises(StoreError, match=expected) as info:
        bare_store.load_session("corp")
    assert_no_secret(info.value, ["ACCESSTOKENfromabackendmessage"])
    assert "\n" not in info.value.line()


def test_a_value_over_a_backends_limit_fails_loudly(bare_store: Store, backend_swap: Any) -> None:
    backend = MemoryKeyring()
    backend.blob_limit = 100  # tighter than any chunk
    backend_swap(backend)
    token = make_token()
    with pytest.raises(StoreError, match="PasswordSetError") as info:
        bare_store.save_session("corp", token)
    assert_no_secret(info.value, secrets_of(token))
    assert not bare_store.index_path().exists()


def test_a_lock_makes_the_runtime_dir_private(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ssocred import socket_protocol
    from ssocred.adapters.store import Store

    run_dir = tmp_path / "deep" / "run"
    monkeypatch.setenv("SSOCRED_RUNTIME_DIR", str(run_dir))
    with Store().session_lock("corp"):
        pass
    # Made as a parent of the locks dir, it must still be private: the fast client trusts nothing else.
    for directory in (tmp_path / "deep", run_dir, run_dir / "locks"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    assert socket_protocol.private(str(run_dir))
    run_dir.chmod(0o755)  # as an older version left it
    with Store().session_lock("corp"):
        pass
    assert socket_protocol.private(str(run_dir))
