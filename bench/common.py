"""What the benchmarks share: an isolated environment pointed at the emulator."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.support.emulator import RunningEmulator
    from tests.support.secret_service import PrivateSecretService


def isolated_env(tmp: Path, emu_env: dict[str, str], **extra: str) -> dict[str, str]:
    """The current environment without AWS_* settings, with every ssocred and AWS path in ``tmp``.

    Autostart is off unless ``extra`` turns it on: a benchmark starts the daemon it measures itself,
    and its "no daemon" cases must not get one.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(emu_env)
    env.update({
        "HOME": str(tmp),
        "AWS_CONFIG_FILE": str(tmp / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "SSOCRED_STATE_DIR": str(tmp / "state"),
        "SSOCRED_RUNTIME_DIR": str(tmp / "run"),
        "SSOCRED_LOG_DIR": str(tmp / "log"),
        "SSOCRED_AUTOSTART": "0",
    })
    env.update(extra)
    return env


@contextmanager
def keyring_and_emulator(*emulator_args: str) -> Iterator[RunningEmulator]:
    """A private Secret Service (exported through DBUS_SESSION_BUS_ADDRESS) and an emulator, stopped after.

    Exits with status 2 and the packages to install when gnome-keyring or dbus is missing.
    """
    from tests.support.emulator import start_emulator

    service = private_keyring()
    emu = start_emulator(*emulator_args)
    try:
        yield emu
    finally:
        emu.stop()
        service.stop()


def private_keyring() -> PrivateSecretService:
    """gnome-keyring on a D-Bus of its own, exported to this process through DBUS_SESSION_BUS_ADDRESS.

    Exits with status 2 and the packages to install when gnome-keyring or dbus is missing.
    """
    from tests.support.secret_service import start_private_secret_service

    service = start_private_secret_service()
    if service is None:
        print("gnome-keyring-daemon and dbus-daemon are needed (apt-get install gnome-keyring dbus)")
        sys.exit(2)
    os.environ["DBUS_SESSION_BUS_ADDRESS"] = service.address
    return service
