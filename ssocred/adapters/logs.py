"""The daemon's logging: stderr or a rotating 0600 file, and a filter that keeps secrets out.

Every handler carries ``REDACTOR``: it replaces each secret value the daemon has registered
(access and refresh tokens, client secrets, secret keys, session tokens) and anything shaped
like one (JWTs, long mixed-case base64 runs) with ``[redacted]``. Access key ids
(``ASIA...``), account ids and session names stay readable.
Example: ``setup(None); REDACTOR.add(token.access_token); logging.getLogger("ssocred").info(...)``
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from ssocred.adapters.paths import log_dir, private_dir

MASK = "[redacted]"
#: Registered secrets kept for redaction; the oldest (long superseded) are forgotten past this many.
MAX_SECRETS = 1024
#: Shorter values are not registered: they would blank out ordinary words.
MIN_SECRET = 8
LOG_FILE_NAME = "daemon.log"
MAX_BYTES = 1_000_000
BACKUPS = 3
_FORMAT = "%(asctime)s %(levelname)s %(message)s"
_DATEFMT = "%Y-%m-%dT%H:%M:%SZ"

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_BLOB = re.compile(r"[A-Za-z0-9+/=_-]{32,}")


def _blob_mask(match: re.Match[str]) -> str:
    """``[redacted]`` for a run that looks like key material, the run itself for a path or a word."""
    text = match.group()
    digit = any(c.isdigit() for c in text)
    upper = any(c.isupper() for c in text)
    lower = any(c.islower() for c in text)
    if digit and upper and lower:
        return MASK
    if digit and (upper or lower) and len(text) >= 40 and "/" not in text:
        return MASK  # long single-case runs: hex or base32 secrets
    return text


class Redactor(logging.Filter):
    """A logging filter that removes secrets from the message, arguments and traceback.

    Example: ``r = Redactor(); r.add("s3cr3t-value"); r.redact("x s3cr3t-value") == "x [redacted]"``
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: dict[str, None] = {}  # insertion-ordered: the oldest go first
        self._ordered: tuple[str, ...] = ()

    def add(self, *values: str | None) -> None:
        """Register secret values: ``REDACTOR.add(creds.secret_access_key, creds.session_token)``."""
        with self._lock:
            changed = False
            for value in values:
                if value and len(value) >= MIN_SECRET and value not in self._secrets:
                    self._secrets[value] = None
                    changed = True
            while len(self._secrets) > MAX_SECRETS:
                del self._secrets[next(iter(self._secrets))]
            if changed:
                # Longest first: a secret that contains another is masked whole.
                self._ordered = tuple(sorted(self._secrets, key=len, reverse=True))

    def redact(self, text: str) -> str:
        """``text`` without registered secrets or secret-shaped runs: ``redact("eyJa.eyJb.c")``."""
        for secret in self._ordered:
            if secret in text:
                text = text.replace(secret, MASK)
        text = _JWT.sub(MASK, text)
        return _BLOB.sub(_blob_mask, text)

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite ``record`` in place (message rendered with its arguments); never drops it."""
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not leak its arguments either
            message = f"{record.msg!s} (unformattable arguments)"
        record.msg = self.redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


#: The daemon's one redaction filter; jobs register the secrets they handle here.
REDACTOR = Redactor()


def default_log_file() -> Path:
    """``--log-dir`` without a value: ``paths.log_dir()/daemon.log``."""
    return log_dir() / LOG_FILE_NAME


def setup(log_file: Path | None, *, level: int = logging.INFO, private_parent: bool = False) -> logging.Handler:
    """Send the daemon's log to ``log_file`` (rotating, 0600) or stderr; returns the handler.

    ``private_parent`` makes the file's directory 0700 (the default log dir). Example:
    ``setup(Path("/tmp/d.log"))``. Libraries are kept at WARNING: their debug output may quote
    request bodies.
    """
    handler: logging.Handler
    if log_file is None:
        handler = logging.StreamHandler(sys.stderr)
        # journald and launchd stamp each line themselves.
        fmt = "%(levelname)s %(message)s" if os.environ.get("JOURNAL_STREAM") else _FORMAT
    else:
        if private_parent:
            private_dir(log_file.parent)
        else:
            log_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(fd, 0o600)
        os.close(fd)
        handler = logging.handlers.RotatingFileHandler(log_file, maxBytes=MAX_BYTES, backupCount=BACKUPS,
                                                       encoding="utf-8")
        fmt = _FORMAT
    formatter = logging.Formatter(fmt, _DATEFMT)
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    handler.addFilter(REDACTOR)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("apscheduler", "botocore", "boto3", "urllib3", "keyring", "secretstorage", "jeepney"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return handler


def redact_all(values: Iterable[str | None]) -> None:
    """Register many secrets at once: ``redact_all([t.access_token, t.refresh_token])``."""
    REDACTOR.add(*values)
