"""The keyring read of ``ssocred process`` without a daemon: one D-Bus connection, and no import it does not use.

The pooled Secret Service backend is checked against keyring's own on a real Secret Service
(same items both ways); the deferred imports and the cache hit's imports in real processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import keyring
import keyring.backend
import pytest
import secretstorage
from keyring.backends import SecretService
from keyring.errors import PasswordDeleteError

from ssocred.adapters import keyring_backend, paths
from ssocred.adapters.keyring_backend import usable_backend
from ssocred.adapters.secret_service import PooledSecretService
from ssocred.adapters.store import Store
from tests.support.cli import ACCOUNT, ROLE, login, run, ssocred_argv
from tests.support.emulator import RunningEmulator
from tests.support.secret_service import store as store  # the function fixture

real = pytest.mark.secret_service
ARGS = ("process", "--sso-session", "corp", "--account-id", ACCOUNT, "--role-name", ROLE)


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Every D-Bus connection secretstorage opens during the test."""
    opened: list[Any] = []
    real_init = secretstorage.dbus_init

    def counting() -> Any:
        connection = real_init()
        opened.append(connection)
        return connection

    monkeypatch.setattr(secretstorage, "dbus_init", counting)
    yield opened


@pytest.fixture
def pooled(store: Store) -> PooledSecretService:
    """The backend the store uses on the private Secret Service, with no connection yet."""
    keyring.set_keyring(SecretService.Keyring())
    kr = usable_backend()
    assert isinstance(kr, PooledSecretService) and keyring.get_keyring() is kr
    return kr


@real
def test_the_items_are_keyrings_own(pooled: PooledSecretService, store: Store) -> None:
    own = SecretService.Keyring()
    pooled.set_password(store.service, "a", "one")
    assert own.get_password(store.service, "a") == "one"
    own.set_password(store.service, "b", "two")
    assert pooled.get_password(store.service, "b") == "two"
    pooled.set_password(store.service, "b", "three")  # replaced, not added beside
    assert own.get_password(store.service, "b") == "three"
    pooled.delete_password(store.service, "b")
    assert own.get_password(store.service, "b") is None
    with pytest.raises(PasswordDeleteError):
        pooled.delete_password(store.service, "b")
    assert pooled.name == own.name == "SecretService Keyring"


@real
def test_a_store_round_trip_of_a_chunked_token_takes_one_connection(
    pooled: PooledSecretService, store: Store, connections: list[Any]
) -> None:
    from tests.test_store import make_token

    token = make_token(pad=3000)  # several parts, each a keyring item
    store.save_session("corp", token)
    assert store.load_session("corp") == token
    assert store.load_creds("corp", ACCOUNT, ROLE) is None
    store.delete_session("corp")
    assert store.load_session("corp") is None
    assert len(connections) == 1


@real
def test_a_broken_or_foreign_connection_is_replaced_and_answers_keep_it(
    pooled: PooledSecretService, store: Store, connections: list[Any]
) -> None:
    pooled.set_password(store.service, "k", "v")
    with pytest.raises(PasswordDeleteError):  # an answer: the connection stays in use
        pooled.delete_password(store.service, "missing")
    assert len(connections) == 1
    connections[0].sock.close()  # the service restarted, say
    assert pooled.get_password(store.service, "k") == "v"
    assert len(connections) == 2
    pooled._idle[0].address = "unix:path=/elsewhere"  # the environment now names another bus
    assert pooled.get_password(store.service, "k") == "v"
    assert len(connections) == 3


@real
def test_keyrings_name_is_remembered_and_properties_carried_over(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keyring_backend, "_remembered", None)
    own = SecretService.Keyring()
    own.preferred_collection = "/org/freedesktop/secrets/aliases/default"
    keyring.set_keyring(own)
    kr = usable_backend()
    assert isinstance(kr, PooledSecretService) and kr.preferred_collection == own.preferred_collection
    kr.set_password(store.service, "p", "q")
    assert own.get_password(store.service, "p") == "q"
    remembered = (paths.state_dir() / "keyring-backend").read_text()
    assert remembered == "keyring.backends.SecretService.Keyring"


def test_never_a_candidate_of_keyrings_detection() -> None:
    assert not PooledSecretService.viable
    assert PooledSecretService not in {type(k) for k in keyring.backend.get_all_keyring()}


DEFERRED = """
import importlib, sys, types
from ssocred.adapters.deferred_imports import READ_UNUSED, defer
assert defer(READ_UNUSED) == ["urllib.request", "importlib_metadata", "more_itertools"]
assert defer(("os", "no_such_module_at_all", "no_such_package.sub")) == []
import keyring.core, keyring.backends.SecretService
assert "http.client" not in sys.modules and "email.parser" not in sys.modules
assert type(sys.modules["urllib.request"]) is not types.ModuleType
import importlib.util
assert importlib.util.find_spec("urllib.request").name == "urllib.request"
assert type(sys.modules["urllib.request"]) is not types.ModuleType
import urllib.request
from urllib.request import Request
assert Request.__module__ == "urllib.request" and callable(urllib.request.urlopen)
assert type(sys.modules["urllib.request"]) is types.ModuleType and "http.client" in sys.modules
import jaraco.context
assert jaraco.context.urllib.request.urlopen is sys.modules["urllib.request"].urlopen
from keyring.compat.py312 import metadata
assert metadata.version("keyring") and type(sys.modules["importlib_metadata"]) is types.ModuleType
import jaraco.functools
assert type(sys.modules["more_itertools"]) is not types.ModuleType
assert list(jaraco.functools.more_itertools.chunked([1, 2, 3], 2)) == [[1, 2], [3]]
import more_itertools
assert type(more_itertools) is types.ModuleType and more_itertools.first([4]) == 4
print("ok")
"""


def test_deferred_modules_load_on_first_use() -> None:
    out = subprocess.run([sys.executable, "-c", DEFERRED], capture_output=True, text=True, check=False, timeout=60)
    assert (out.returncode, out.stdout, out.stderr) == (0, "ok\n", "")


@pytest.mark.slow
def test_a_cache_hit_without_a_daemon_imports_only_what_the_read_uses(sso: RunningEmulator) -> None:
    login()
    first = run(*ARGS)
    assert first.returncode == 0, first.stderr
    before = sso.stats()["operations"]["GetRoleCredentials"]
    hit = subprocess.run([*ssocred_argv(), *ARGS], capture_output=True, text=True, timeout=120, check=False,
                         env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"})
    assert hit.returncode == 0, hit.stderr
    assert json.loads(hit.stdout) == json.loads(first.stdout)
    assert sso.stats()["operations"]["GetRoleCredentials"] == before
    imported = {line.split("|")[-1].strip() for line in hit.stderr.splitlines() if line.startswith("import time:")}
    assert "ssocred.process.local" in imported and "keyring" in imported
    unused = {"boto3", "botocore", "urllib.request", "http.client", "email.parser", "importlib_metadata",
              "more_itertools", "ssocred.model.config", "ssocred.model.chain", "argparse"}
    assert not imported & unused



EXIT = """
import atexit, sys, threading, time, types
from ssocred.__main__ import exit_now

class Noisy:
    def __del__(self):
        sys.stderr.write("torn down\\n")

noisy = Noisy()
atexit.register(lambda: sys.stderr.write("handler ran\\n"))
sys.stdout.write("answer")  # no newline: left in the buffer until the exit flushes it
case = sys.argv[1]
if case == "thread":
    threading.Thread(target=lambda: (time.sleep(0.3), sys.stdout.write(" and more"))).start()
elif case == "fetched":
    sys.modules["botocore"] = types.ModuleType("botocore")
exit_now(3)
"""


@pytest.mark.parametrize(("case", "stdout", "torn_down"), [
    ("hit", "answer", False),
    ("thread", "answer and more", True),  # a thread still working: the normal exit waits for it
    ("fetched", "answer", True),
])
def test_exit_now_runs_handlers_and_flushes_and_tears_down_only_when_it_may_matter(
    case: str, stdout: str, torn_down: bool
) -> None:
    out = subprocess.run([sys.executable, "-c", EXIT, case], capture_output=True, text=True, check=False, timeout=60)
    assert (out.returncode, out.stdout) == (3, stdout)
    assert out.stderr.startswith("handler ran\n")
    assert ("torn down" in out.stderr) is torn_down
