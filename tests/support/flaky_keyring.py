"""A keyring backend for fault tests: the real Secret Service, with writes that fail on demand.

Load it in a child process with ``PYTHON_KEYRING_BACKEND=tests.support.flaky_keyring.FlakyKeyring``
(the checkout on ``PYTHONPATH``) and steer it through the file named by ``$FLAKY_KEYRING_CONTROL``:
a number N fails the next N writes (each failed write counts the number down), ``all`` fails every
write until the file changes, a missing or empty file fails none. Reads and deletes always reach the
Secret Service. ``$FLAKY_KEYRING_LOG`` (optional) gets one line per failed write.

Example: ``Path(os.environ["FLAKY_KEYRING_CONTROL"]).write_text("1")`` fails the next write only.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from keyring.backends import SecretService
from keyring.errors import PasswordSetError


def _should_fail() -> bool:
    """Consume one failure from the control file, under a lock (several processes may write)."""
    control = os.environ.get("FLAKY_KEYRING_CONTROL")
    if not control:
        return False
    try:
        fd = os.open(control, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        text = os.pread(fd, 64, 0).decode().strip()
        if text == "all":
            return True
        if not text.isdigit() or int(text) <= 0:
            return False
        left = str(int(text) - 1).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, left, 0)
        return True
    finally:
        os.close(fd)


class FlakyKeyring(SecretService.Keyring):
    """The Secret Service backend whose ``set_password`` fails when the control file says so."""

    priority = 0.1  # never chosen by detection: only when named in PYTHON_KEYRING_BACKEND

    def set_password(self, service: str, username: str, password: str) -> None:
        """Store, or raise PasswordSetError as a broken keyring would."""
        if _should_fail():
            log = os.environ.get("FLAKY_KEYRING_LOG")
            if log:
                with Path(log).open("a") as fh:
                    fh.write(f"failed write of {username.split('#')[0]}\n")
            raise PasswordSetError("injected failure: the keyring refused the write")
        super().set_password(service, username, password)
