"""STS GetCallerIdentity through botocore's own credential chain, as every SDK resolves a profile.

Example: ``caller_identity("dev", popen=None, missing_profile=lambda: None)["Account"] == "111122223333"``
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import Any

from ssocred.adapters import aws
from ssocred.errors import ConfigError, LoginRequired, ServiceError, SsocredError
from ssocred.model.config_syntax import clean


def caller_identity(profile: str | None, popen: Callable[..., Any] | None,
                    missing_profile: Callable[[], None]) -> dict[str, Any]:
    """``Account``, ``Arn``, ``UserId`` and ``credential_source`` for ``profile`` (None: the default chain).

    ``popen`` takes the place of ``subprocess.Popen`` in botocore's credential_process provider;
    ``missing_profile`` raises the caller's own error when botocore knows no such profile.
    """
    import boto3.session
    import botocore.config
    import botocore.exceptions as bex

    try:
        session = boto3.session.Session(profile_name=profile)
    except bex.ProfileNotFound:
        missing_profile()
        raise ConfigError(f"profile '{clean(profile or '')}' is not defined",
                          fix="check the name; ssocred doctor --profile NAME explains what is wrong") from None
    if popen is not None:
        _install(session, popen)
    retries = botocore.config.Config(retries={"mode": "standard", "max_attempts": 5})
    endpoint = "STS"
    try:
        # Creating the client already resolves the credentials (and runs credential_process).
        sts = session.client("sts", region_name=session.region_name or "us-east-1", config=retries)
        endpoint = str(sts.meta.endpoint_url)
        ident = sts.get_caller_identity()
    except bex.ClientError as exc:
        raise ServiceError(f"STS GetCallerIdentity failed: {aws.error_code(exc)}: "
                           f"{aws.service_message(exc)}") from None
    except (bex.BotoCoreError, ValueError) as exc:
        if aws.is_network_error(exc):
            raise aws.network_error(exc, endpoint) from None
        raise _credentials_error(exc, profile) from None
    creds = session.get_credentials()
    return {"Account": ident["Account"], "Arn": ident["Arn"], "UserId": ident["UserId"],
            "credential_source": getattr(creds, "method", None)}


def _install(session: Any, popen: Callable[..., Any]) -> None:
    """Put ``popen`` in the place of ``subprocess.Popen`` in the session's credential_process provider."""
    try:
        provider = session._session.get_component("credential_provider").get_provider("custom-process")
    except Exception:  # a botocore without these parts: its own provider runs, errors are mapped after
        return
    if provider is not None and hasattr(provider, "_popen"):
        provider._popen = popen


def _credentials_error(exc: Exception, profile: str | None) -> SsocredError:
    """One line for a botocore failure while resolving credentials (never its traceback)."""
    import botocore.exceptions as bex

    from ssocred.adapters.logs import Redactor

    who = _who(profile)
    doctor = f"run: ssocred doctor{' --profile ' + shlex.quote(profile) if profile else ''}"
    reason = clean(Redactor().redact(str(exc)), 200)
    if isinstance(exc, bex.NoCredentialsError):
        return ConfigError(f"no credentials for {who}",
                           fix="pass --profile with a profile that has credentials (ssocred configure writes one)")
    if isinstance(exc, bex.CredentialRetrievalError):
        reason = reason.removeprefix("Error when retrieving credentials from custom-process: ")
        return ServiceError(f"credentials for {who} failed: {reason}", fix=doctor)
    if isinstance(exc, (bex.SSOError, bex.SSOTokenLoadError, bex.UnauthorizedSSOTokenError,
                        bex.TokenRetrievalError)):
        return LoginRequired(f"{who} uses botocore's own SSO provider, which failed: {reason}", fix=doctor)
    if isinstance(exc, (ValueError, bex.ProfileNotFound, bex.InvalidConfigError, bex.PartialCredentialsError,
                        bex.NoRegionError, bex.InvalidRegionError, bex.ConfigParseError)):
        return ConfigError(f"the configuration of {who} is not usable: {reason}", fix=doctor)
    return ServiceError(f"credentials for {who} could not be resolved: {reason}", fix=doctor)


def _who(profile: str | None) -> str:
    return f"profile '{clean(profile)}'" if profile else "the default profile"
