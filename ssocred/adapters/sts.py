"""STS: GetCallerIdentity through botocore's own credential chain, as every SDK resolves a profile, and AssumeRole.

Example: ``caller_identity("dev", popen=None, missing_profile=lambda: None)["Account"] == "111122223333"``
"""

from __future__ import annotations

import datetime as dt
import shlex
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ssocred.adapters import aws, network_client, server_text
from ssocred.errors import AccessDenied, ConfigError, LoginRequired, ServiceError, SsocredError
from ssocred.model.config_syntax import clean, section_label
from ssocred.model.sso import RoleCredentials

if TYPE_CHECKING:
    from ssocred.model.chain import Link

#: What AssumeRole must answer.
_ASSUMED: dict[str, Any] = {
    "Credentials": {"AccessKeyId": str, "SecretAccessKey": str, "SessionToken": str, "Expiration": dt.datetime},
}
#: STS refused the signing credentials themselves: fresher source credentials may get through.
_SOURCE_REFUSED = frozenset({"InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException", "InvalidAccessKeyId"})


class SourceRejected(Exception):
    """STS did not accept the source credentials (unknown or expired): ``except SourceRejected: refetch()``."""


def assume_role(source: RoleCredentials, link: Link, *, endpoint_url: str | None = None,
                config_file: str | None = None) -> tuple[RoleCredentials, str]:
    """AssumeRole of ``link`` signed with ``source``: the new credentials and the STS endpoint that gave them.

    The endpoint is botocore's for ``link.profile`` (``AWS_ENDPOINT_URL_STS``, its ``[services]``
    section, else the regional STS of ``link.region``) unless ``endpoint_url`` names one.
    Example: ``assume_role(creds, Link("deploy", "arn:aws:iam::222233334444:role/Deploy"))[0].account_id``
    """
    if network_client.active():
        result: tuple[RoleCredentials, str] = network_client.call(network_client.ASSUME_ROLE, source, link,
                                                                  endpoint_url, config_file)
        return result
    from botocore.exceptions import ClientError

    client_ = _signed_client(source, link, endpoint_url, config_file)
    endpoint = str(client_.meta.endpoint_url)
    params: dict[str, Any] = {"RoleArn": link.role_arn, "RoleSessionName": link.session_name}
    if link.duration is not None:
        params["DurationSeconds"] = link.duration
    if link.external_id is not None:
        params["ExternalId"] = link.external_id
    issued = time.time()
    try:
        answer = aws.invoke(client_, "assume_role", expect=_ASSUMED, **params)
    except ClientError as exc:
        raise _assume_error(exc, link) from None
    c = answer["Credentials"]
    creds = RoleCredentials(access_key_id=c["AccessKeyId"], secret_access_key=c["SecretAccessKey"],
                            session_token=c["SessionToken"], expiration=c["Expiration"].timestamp(),
                            account_id=link.account_id, role_name=link.role_name, issued_at=issued)
    return creds, endpoint


def _signed_client(source: RoleCredentials, link: Link, endpoint_url: str | None, config_file: str | None) -> Any:
    """A botocore STS client signing with ``source``, its endpoint resolved for ``link.profile``."""
    import botocore.config
    import botocore.session
    from botocore.exceptions import BotoCoreError, ProfileNotFound

    timeout = min(aws.READ_TIMEOUT, aws.budget())
    cfg = botocore.config.Config(retries={"total_max_attempts": 1}, read_timeout=timeout,
                                 connect_timeout=min(aws.CONNECT_TIMEOUT, timeout))
    for profile in (link.profile, None):
        session = botocore.session.Session(profile=profile)
        if config_file is not None:
            session.set_config_variable("config_file", config_file)
        try:
            made = session.create_client(
                "sts", region_name=link.region, endpoint_url=endpoint_url, config=cfg,
                aws_access_key_id=source.access_key_id, aws_secret_access_key=source.secret_access_key,
                aws_session_token=source.session_token)
        except ProfileNotFound:
            continue  # the daemon may not see the file the profile came from: botocore's defaults then
        except BotoCoreError as exc:
            raise ServiceError(f"cannot create the STS client: {clean(str(exc))}") from None
        return aws.checked(made)
    raise ServiceError("cannot create the STS client")


def _assume_error(exc: Exception, link: Link) -> Exception:
    """One line for a refused AssumeRole; SourceRejected when STS refused the signing credentials."""
    code = aws.error_code(exc) or "Unknown"
    message = server_text.service_message(exc)
    label = section_label("profile", link.profile)
    what = f"STS refused AssumeRole of {clean(link.role_arn)} for {label}"
    if code in _SOURCE_REFUSED:
        return SourceRejected(code)
    if code == "AccessDenied":
        return AccessDenied(f"{what}: {message}",
                            fix="the role's trust policy must allow the source role to assume it (ask its admin), "
                                f"or correct role_arn and external_id in {label}")
    if code == "ValidationError":
        return ConfigError(f"{what}: {message}",
                           fix=f"check role_arn, role_session_name, external_id and duration_seconds in {label}")
    return ServiceError(f"{what}: {server_text.clean(code, 60)}: {message}", fix="try again in a minute")


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
                           f"{server_text.service_message(exc)}") from None
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
