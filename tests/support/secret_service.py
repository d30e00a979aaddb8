"""A private Secret Service for the tests: gnome-keyring on its own D-Bus session bus.

Nothing touches the user's real keyring: the bus, HOME and the XDG directories all live in a
temporary directory that is removed afterwards. Where gnome-keyring or dbus-daemon is not
installed the tests that need it are skipped, unless ``SSOCRED_REQUIRE_SECRET_SERVICE=1``
(set in CI), which makes them fail instead.

Example: ``svc = start_private_secret_service(); svc.lock(); svc.unlock(); svc.stop()``
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

if TYPE_CHECKING:
    from ssocred.adapters.store import Store

REQUIRE_ENV = "SSOCRED_REQUIRE_SECRET_SERVICE"
SECRETS_NAME = "org.freedesktop.secrets"
START_TIMEOUT = 15.0

_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>{address}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


class SecretServiceUnavailable(RuntimeError):
    """The binaries are there but the private Secret Service did not come up."""


#: Every private Secret Service now running in this process, and how many gnome-keyrings died so far.
_LIVE: list[PrivateSecretService] = []
_DEATHS = [0]


def keyring_deaths() -> int:
    """How often a private gnome-keyring has died in this process so far, one that is dead right now included.

    gnome-keyring 42 aborts now and then when D-Bus clients go away mid-call (an upstream race:
    GLib's "invoke_get_property_in_idle_cb: assertion failed"); conftest reruns a test that
    failed while this count rose, and says so.
    """
    return _DEATHS[0] + sum(1 for svc in _LIVE if svc.daemon.poll() is not None)


@dataclass
class PrivateSecretService:
    """A running private bus with gnome-keyring on it; ``address`` is its D-Bus address."""

    root: Path
    address: str
    password: str
    bus: subprocess.Popen[bytes]
    daemon: subprocess.Popen[bytes]
    restarts: int = 0

    def ensure_running(self) -> bool:
        """Start gnome-keyring again if it died; True when it had to (its data and password stay).

        gnome-keyring can abort under many parallel D-Bus clients (an upstream bug); one crash
        must fail the test it happened in, not every test after it.
        """
        if self.daemon.poll() is None:
            return False
        _DEATHS[0] += 1
        if self.bus.poll() is not None:
            raise SecretServiceUnavailable("the private D-Bus daemon is gone as well")
        warnings.warn(f"gnome-keyring exited with status {self.daemon.returncode} during the run; "
                      f"started it again (its output: {_log_tail(self.root)})", stacklevel=2)
        self.daemon = _start_keyring_daemon(self.root, self.password)
        self.restarts += 1
        _wait_for_name(self)
        with closing(self.connection()) as conn:
            _ensure_default_collection(conn, self.password)
        return True

    def connection(self) -> Any:
        """A new jeepney connection to the private bus (close it after use)."""
        from jeepney.io.blocking import open_dbus_connection

        return open_dbus_connection(bus=self.address)

    def keyring(self) -> Any:
        """keyring's Secret Service backend (it talks to ``$DBUS_SESSION_BUS_ADDRESS``)."""
        from keyring.backends import SecretService

        return SecretService.Keyring()

    def is_locked(self) -> bool:
        """Whether the default collection is locked."""
        import secretstorage

        with closing(self.connection()) as conn:
            return bool(secretstorage.Collection(conn).is_locked())

    def lock(self) -> None:
        """Lock the default collection, as a screen lock or a timeout would."""
        import secretstorage

        with closing(self.connection()) as conn:
            secretstorage.Collection(conn).lock()

    def unlock(self) -> None:
        """Unlock the default collection with its password, without a prompt."""
        with closing(self.connection()) as conn:
            _unlock(conn, self.password)

    def stop(self) -> None:
        """Stop gnome-keyring and the bus, and remove every file they used."""
        if self in _LIVE:
            _LIVE.remove(self)
            if self.daemon.poll() is not None:
                _DEATHS[0] += 1
        for proc in (self.daemon, self.bus):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        shutil.rmtree(self.root, ignore_errors=True)


def start_private_secret_service() -> PrivateSecretService | None:
    """Start a private Secret Service; None when gnome-keyring or dbus-daemon is not installed.

    Raises SecretServiceUnavailable when they are installed but do not start.
    """
    dbus_daemon, keyring_daemon = shutil.which("dbus-daemon"), shutil.which("gnome-keyring-daemon")
    if not (dbus_daemon and keyring_daemon):
        return None
    root = Path(tempfile.mkdtemp(prefix="ssocred-ss-"))
    for name in ("run", "home", "data", "config", "cache"):
        (root / name).mkdir(mode=0o700)
    address = f"unix:path={root}/bus"
    # No service directories: nothing is auto-started, so a prompt fails at once instead of
    # waiting for a desktop prompter.
    (root / "bus.conf").write_text(_BUS_CONFIG.format(address=address))
    env = _keyring_env(root)
    log = (root / "daemons.log").open("wb")
    bus = subprocess.Popen(
        [dbus_daemon, "--config-file", str(root / "bus.conf"), "--nofork"],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        env=env,
        preexec_fn=_die_with_parent,
    )
    log.close()
    password = uuid.uuid4().hex
    svc = PrivateSecretService(root, address, password, bus, bus)
    try:
        svc.daemon = _start_keyring_daemon(root, password)
        _wait_for_name(svc)
        with closing(svc.connection()) as conn:
            _ensure_default_collection(conn, password)
        _LIVE.append(svc)
    except BaseException as exc:
        details = _log_tail(root)
        svc.stop()
        if isinstance(exc, Exception):
            raise SecretServiceUnavailable(f"{type(exc).__name__}: {exc}; daemon output: {details}") from exc
        raise
    return svc


def _keyring_env(root: Path) -> dict[str, str]:
    """The environment of the private bus and keyring daemons: everything inside ``root``."""
    env = {k: v for k, v in os.environ.items() if k not in {"DISPLAY", "WAYLAND_DISPLAY"}}
    env.update(
        HOME=str(root / "home"),
        XDG_RUNTIME_DIR=str(root / "run"),
        XDG_DATA_HOME=str(root / "data"),
        XDG_CONFIG_HOME=str(root / "config"),
        XDG_CACHE_HOME=str(root / "cache"),
        DBUS_SESSION_BUS_ADDRESS=f"unix:path={root}/bus",
    )
    return env


def _start_keyring_daemon(root: Path, password: str) -> subprocess.Popen[bytes]:
    """gnome-keyring (secrets only) on the private bus, its login keyring unlocked with ``password``."""
    keyring_daemon = shutil.which("gnome-keyring-daemon")
    assert keyring_daemon is not None
    with (root / "daemons.log").open("ab") as log:
        daemon = subprocess.Popen(
            [keyring_daemon, "--foreground", "--replace", "--unlock", "--components=secrets"],
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=log,
            env=_keyring_env(root),
            preexec_fn=_die_with_parent,
        )
    assert daemon.stdin is not None
    daemon.stdin.write(password.encode())
    daemon.stdin.close()
    return daemon


def _die_with_parent() -> None:
    """Ask Linux to stop the daemon if the test run dies without its teardown."""
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    with suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _wait_for_name(svc: PrivateSecretService) -> None:
    from jeepney import DBus

    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        for proc, what in ((svc.bus, "dbus-daemon"), (svc.daemon, "gnome-keyring-daemon")):
            if proc.poll() is not None:
                raise SecretServiceUnavailable(f"{what} exited with status {proc.returncode}")
        try:
            with closing(svc.connection()) as conn:
                if conn.send_and_get_reply(DBus().NameHasOwner(SECRETS_NAME)).body[0]:
                    return
        except OSError:
            pass  # the bus socket is not there yet
        time.sleep(0.02)
    raise SecretServiceUnavailable(f"{SECRETS_NAME} not on the bus after {START_TIMEOUT:g} s")


def _ensure_default_collection(conn: Any, password: str) -> None:
    """A default collection (gnome-keyring's "login"), unlocked."""
    import secretstorage
    from secretstorage.exceptions import ItemNotFoundException
    from secretstorage.util import DBusAddressWrapper

    try:
        collection = secretstorage.Collection(conn)
    except ItemNotFoundException:
        paths = [c.collection_path for c in secretstorage.get_all_collections(conn)]
        login = next((p for p in paths if p.endswith("/login")), None)
        if login is None:
            collection = secretstorage.create_collection(conn, "Login", "default")
        else:
            service = DBusAddressWrapper("/org/freedesktop/secrets", "org.freedesktop.Secret.Service", conn)
            service.call("SetAlias", "so", "default", login)
            collection = secretstorage.Collection(conn)
    if collection.is_locked():
        _unlock(conn, password)


def _unlock(conn: Any, password: str) -> None:
    """gnome-keyring's own promptless unlock; the standard Unlock call needs a prompter."""
    import secretstorage
    from secretstorage.util import DBusAddressWrapper, format_secret, open_session

    collection = secretstorage.Collection(conn)
    path = collection.collection_path
    if "/aliases/" in path:
        path = _resolve_alias(conn, path.rsplit("/", 1)[1])
    internal = DBusAddressWrapper(
        "/org/freedesktop/secrets", "org.gnome.keyring.InternalUnsupportedGuiltRiddenInterface", conn
    )
    secret = format_secret(open_session(conn), password.encode(), "text/plain")
    internal.call("UnlockWithMasterPassword", "o(oayays)", path, secret)
    if collection.is_locked():
        raise SecretServiceUnavailable("the default collection is still locked after unlocking it")


def _resolve_alias(conn: Any, alias: str) -> str:
    from secretstorage.util import DBusAddressWrapper

    service = DBusAddressWrapper("/org/freedesktop/secrets", "org.freedesktop.Secret.Service", conn)
    (path,) = service.call("ReadAlias", "s", alias)
    return str(path)


def _log_tail(root: Path) -> str:
    try:
        text = (root / "daemons.log").read_text(errors="replace")
    except OSError:
        return "(none)"
    return " | ".join(text.strip().splitlines()[-5:]) or "(none)"


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"a real Secret Service is required ({REQUIRE_ENV}=1) but {reason}", pytrace=False)
    pytest.skip(f"no real Secret Service: {reason}")


def _use_detected_backend() -> None:
    """Re-run keyring's backend detection now that the bus exists, and check what it chose."""
    import keyring
    import keyring.backend
    import keyring.core
    from keyring.backends import SecretService

    reset = getattr(keyring.backend.get_all_keyring, "reset", None)
    if reset is not None:
        # keyring remembers which backends were viable before the bus existed.
        with suppress(KeyError):  # nothing remembered yet
            reset()
    keyring.core.init_backend()
    chosen = keyring.get_keyring()
    if not isinstance(chosen, SecretService.Keyring):
        warnings.warn(
            f"keyring detected {chosen.name!r}, not the Secret Service; using the Secret Service explicitly",
            stacklevel=2,
        )
        keyring.set_keyring(SecretService.Keyring())


@contextmanager
def exported_secret_service() -> Iterator[PrivateSecretService]:
    """A new private Secret Service on ``$DBUS_SESSION_BUS_ADDRESS`` (for child processes too), stopped after.

    Skips (or, with ``SSOCRED_REQUIRE_SECRET_SERVICE=1``, fails) the test when none can run.
    """
    try:
        svc = start_private_secret_service()
    except SecretServiceUnavailable as exc:
        _unavailable(f"it did not start ({exc})")
    if svc is None:
        _unavailable("gnome-keyring-daemon and dbus-daemon are not both installed")
    previous = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    os.environ["DBUS_SESSION_BUS_ADDRESS"] = svc.address
    try:
        yield svc
    finally:
        if previous is None:
            os.environ.pop("DBUS_SESSION_BUS_ADDRESS", None)
        else:
            os.environ["DBUS_SESSION_BUS_ADDRESS"] = previous
        svc.stop()


@pytest.fixture(scope="session")
def secret_service() -> Iterator[PrivateSecretService]:
    """The private Secret Service for the whole test session, exported to child processes."""
    with exported_secret_service() as svc:
        _use_detected_backend()
        try:
            yield svc
        finally:
            import keyring
            from keyring.backends import fail

            # Later code must not reach for the user's real keyring through a stale choice.
            keyring.set_keyring(fail.Keyring())


@pytest.fixture
def store(secret_service: PrivateSecretService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    """A Store on the private Secret Service with its own keyring service name and directories."""
    import keyring

    from ssocred.adapters.store import Store

    service = f"ssocred-test-{uuid.uuid4().hex}"
    monkeypatch.setenv("SSOCRED_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("SSOCRED_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("SSOCRED_KEYRING_SERVICE", service)
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    secret_service.ensure_running()
    if secret_service.is_locked():
        secret_service.unlock()
    keyring.set_keyring(secret_service.keyring())  # a test before may have chosen another backend
    return Store(service)
