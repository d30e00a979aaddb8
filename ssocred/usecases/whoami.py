"""``whoami``: who a profile's credentials belong to, resolved by botocore as in every SDK.

botocore picks the credential provider; ssocred reads the config files first (a syntax fault is
one line) and starts a credential_process itself (``CredentialProcess``), so that a command
missing from PATH or a helper that fails is one line with its exit code.
Example: ``whoami("dev")["account"] == "111122223333"``
"""

from __future__ import annotations

import os
import shlex
from typing import TYPE_CHECKING, Any

from ssocred.errors import (
    EXIT_ACCESS_DENIED,
    EXIT_CONFIG,
    EXIT_INTERRUPTED,
    EXIT_LOGIN_REQUIRED,
    EXIT_SERVICE,
    EXIT_STORE,
    EXIT_USAGE,
    ConfigError,
    ServiceError,
    SsocredError,
)
from ssocred.model.config_syntax import clean, section_label

if TYPE_CHECKING:
    from ssocred.model.config import AwsConfig


def whoami(profile: str | None) -> dict[str, Any]:
    """STS GetCallerIdentity with ``profile``'s credentials: ``account``, ``arn``, ``user_id`` and their source."""
    from ssocred.adapters import sts

    cfg = _read_config_files()
    ident = sts.caller_identity(profile, CredentialProcess(profile),
                                missing_profile=lambda: _explain_missing(cfg, profile))
    return {
        "profile": profile,
        "account": ident["Account"],
        "arn": ident["Arn"],
        "user_id": ident["UserId"],
        "credential_source": ident["credential_source"],
    }


def _explain_missing(cfg: AwsConfig, profile: str | None) -> None:
    cfg.profile(profile or "default")  # raises, naming close matches or why the file holds none


def _read_config_files() -> AwsConfig:
    """The config, read as ssocred reads it, after the shared credentials file was checked the same way.

    botocore reads both with the same parser; a fault in either is a ConfigError naming its line.
    """
    from pathlib import Path

    from ssocred.adapters import config_file

    credentials = os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials"
    config_file.load(Path(os.path.expanduser(os.path.expandvars(credentials))))
    return config_file.load()


class CredentialProcess:
    """Starts a profile's credential_process for botocore, exactly as botocore's ``ProcessProvider`` would.

    A command that would not start is a ConfigError naming the fix; a command that fails passes its
    exit code and its line on: ssocred's own one line comes through unchanged (never doubled).
    Example: ``caller_identity("dev", CredentialProcess("dev"), ...)`` runs the helper through it.
    """

    def __init__(self, profile: str | None) -> None:
        self.profile = profile
        self.label = section_label("profile", profile or "default")

    def __call__(self, argv: list[str], **_: Any) -> _Finished:
        """Run ``argv`` (already split as botocore splits the line); what botocore's ``Popen`` call gets back."""
        import json
        import subprocess

        from ssocred.usecases.doctor.routing import executable_problem

        problem = executable_problem(argv, self.label)
        if problem is not None:
            raise problem
        try:
            done = subprocess.run(argv, capture_output=True, check=False)
        except OSError as exc:
            raise ConfigError(f"credential_process in {self.label} cannot be started "
                              f"({exc.strerror or type(exc).__name__})",
                              fix=f"run: ssocred doctor --profile {shlex.quote(self.profile or 'default')}") from None
        if done.returncode != 0:
            raise self.failure(argv, done.returncode, done.stderr)
        try:
            json.loads(done.stdout)
        except ValueError:
            raise ServiceError(f"the credential_process of {self.label} printed something that is not JSON",
                               fix=f"run: ssocred doctor --profile {shlex.quote(self.profile or 'default')}") from None
        return _Finished(done.stdout)

    def failure(self, argv: list[str], code: int, stderr: bytes) -> SsocredError:
        """The error for a credential_process that exited with ``code``: ssocred's own, or one naming it."""
        from ssocred.errors import from_reply
        from ssocred.usecases.doctor.routing import runs_ssocred

        lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
        said = next((line for line in lines if not line.startswith("ssocred: warning:")), "")
        if runs_ssocred(shlex.join(argv)) and said.startswith("ssocred: ") and code in _SSOCRED_CODES:
            return from_reply(code, clean(said.removeprefix("ssocred: "), 1000))
        from ssocred.adapters.logs import Redactor

        how = f"was ended by signal {-code}" if code < 0 else f"failed (exit status {code})"
        shown = clean(Redactor().redact(said), 200) if said else "nothing on stderr"
        return ServiceError(f"the credential_process of {self.label} {how}: {shown}",
                            fix=f"run: ssocred doctor --profile {shlex.quote(self.profile or 'default')}")


#: The exit codes ``ssocred process`` documents for a failure.
_SSOCRED_CODES = frozenset({EXIT_LOGIN_REQUIRED, EXIT_USAGE, EXIT_CONFIG, EXIT_ACCESS_DENIED, EXIT_SERVICE,
                            EXIT_STORE, EXIT_INTERRUPTED})


class _Finished:
    """A credential process that has ended well, shaped as botocore reads a ``Popen``: ``communicate()``."""

    returncode = 0

    def __init__(self, stdout: bytes) -> None:
        self._stdout = stdout

    def communicate(self) -> tuple[bytes, bytes]:
        """``(stdout, stderr)``; stderr of a successful helper is ignored, as botocore ignores it."""
        return self._stdout, b""
