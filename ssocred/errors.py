"""One error type with a message that states the fix, and the documented exit codes.

Example: ``raise LoginRequired("SSO session 'corp' has expired", fix="ssocred login --sso-session corp")``
"""

from __future__ import annotations

#: Exit codes, documented in the README ("Exit codes").
EXIT_OK = 0
EXIT_LOGIN_REQUIRED = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_ACCESS_DENIED = 4
EXIT_SERVICE = 5
EXIT_STORE = 6
EXIT_INTERRUPTED = 130


class SsocredError(Exception):
    """An expected failure: printed as one line (``message; fix``) with no traceback.

    Example: ``SsocredError("no such profile 'dev'", fix="add [profile dev] to ~/.aws/config").line()``
    """

    exit_code = EXIT_SERVICE

    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def line(self) -> str:
        """The single line shown to the user, e.g. ``"token expired; run: ssocred login"``."""
        return f"{self.message}; {self.fix}" if self.fix else self.message

    def stderr_line(self) -> str:
        """What a failed command writes to stderr: ``"ssocred: token expired; run: ssocred login\\n"``."""
        return f"ssocred: {self.line()}\n"


class UsageError(SsocredError):
    """Bad command-line input, e.g. two mutually exclusive selectors."""

    exit_code = EXIT_USAGE


class ConfigError(SsocredError):
    """``~/.aws/config`` is missing something or contradicts itself."""

    exit_code = EXIT_CONFIG


class LoginRequired(SsocredError):
    """No usable SSO token: never logged in, expired and not refreshable, or revoked."""

    exit_code = EXIT_LOGIN_REQUIRED


class AccessDenied(SsocredError):
    """The portal refused the account/role, or the user denied the login."""

    exit_code = EXIT_ACCESS_DENIED


class ServiceError(SsocredError):
    """The network or the service failed (unreachable, 5xx, throttled, TLS)."""

    exit_code = EXIT_SERVICE


class StoreError(SsocredError):
    """The credential store (OS keyring) cannot be used: missing, locked, timed out, corrupt."""

    exit_code = EXIT_STORE


class NoKeyring(StoreError):
    """No keyring backend can keep secrets here, and no memory-store daemon answers for one.

    Example: ``raise NoKeyring("no usable OS keyring", fix="start one: ssocred daemon --store memory")``
    """


_BY_CODE: dict[int, type[SsocredError]] = {
    EXIT_LOGIN_REQUIRED: LoginRequired,
    EXIT_USAGE: UsageError,
    EXIT_CONFIG: ConfigError,
    EXIT_ACCESS_DENIED: AccessDenied,
    EXIT_SERVICE: ServiceError,
    EXIT_STORE: StoreError,
}


def from_reply(code: int, message: str, fix: str | None = None) -> SsocredError:
    """The error another ssocred process (the daemon, the refresher) reported with its exit code.

    Example: ``from_reply(1, "SSO session 'corp' has expired", "run: ...").exit_code == 1``
    """
    error = _BY_CODE.get(code, SsocredError)(message, fix=fix)
    error.exit_code = code
    return error
