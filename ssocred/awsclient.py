"""Unsigned boto3 clients for the SSO services, and translation of their failures.

Clients are plain boto3 clients, so ``AWS_ENDPOINT_URL_SSO_OIDC`` / ``AWS_ENDPOINT_URL_SSO``,
``AWS_CA_BUNDLE``, proxies and retries behave exactly as in every other AWS tool.
Example: ``client("sso", "us-east-1").get_role_credentials(...)``
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from ssocred.errors import ServiceError

#: boto3 sessions are not thread-safe; the clients they make are (the daemon uses several threads).
_SESSION_LOCK = threading.Lock()
# Standard mode retries 5xx, throttling and TooManyRequestsException; never the 400-class OAuth errors.
_RETRIES = {"mode": "standard", "max_attempts": 8}


@functools.lru_cache(maxsize=1)
def _session() -> Any:
    import boto3.session

    return boto3.session.Session()


def client(service: str, region: str, *, pool: int = 10, attempts: int | None = None, timeout: float = 30) -> Any:
    """An unsigned boto3 client for ``service`` ("sso-oidc" or "sso") in the SSO region.

    ``pool`` is the number of connections kept open: at least the threads that share the client.
    ``attempts=1`` and a short ``timeout`` suit a probe that expects to fail fast.
    """
    import botocore.config
    from botocore import UNSIGNED
    from botocore.exceptions import BotoCoreError

    retries = _RETRIES if attempts is None else {"mode": "standard", "total_max_attempts": attempts}
    cfg = botocore.config.Config(
        signature_version=UNSIGNED, retries=retries, connect_timeout=min(10, timeout),  # type: ignore[arg-type]
        read_timeout=timeout, max_pool_connections=pool,
    )
    try:
        with _SESSION_LOCK:
            return _session().client(service, region_name=region, config=cfg)
    except BotoCoreError as exc:
        raise ServiceError(f"cannot create the {service} client: {exc}") from None


def invoke(client_: Any, op: str, **kwargs: Any) -> dict[str, Any]:
    """Call ``op`` on a boto3 client; transport failures become one-line ServiceErrors.

    Service errors (botocore ClientError) propagate for the adapter to translate.
    """
    try:
        result: dict[str, Any] = getattr(client_, op)(**kwargs)
        return result
    except Exception as exc:
        if is_network_error(exc):
            raise network_error(exc, str(client_.meta.endpoint_url)) from None
        raise


def error_code(exc: BaseException) -> str | None:
    """The service error code of a botocore ClientError, e.g. ``"InvalidGrantException"``."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None


def network_error(exc: BaseException, endpoint: str) -> ServiceError:
    """A one-line ServiceError for a connection, TLS or timeout failure talking to ``endpoint``."""
    from botocore.exceptions import SSLError

    if isinstance(exc, SSLError):
        return ServiceError(
            f"TLS certificate verification failed for {endpoint}",
            fix="if a proxy intercepts TLS, set AWS_CA_BUNDLE to its CA certificate",
        )
    return ServiceError(
        f"cannot reach {endpoint} ({type(exc).__name__})",
        fix="check the network, HTTPS_PROXY and the sso_region",
    )


def is_network_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a botocore transport failure (not a service answer)."""
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError

    return isinstance(exc, (BotoConnectionError, HTTPClientError))


def service_message(exc: BaseException) -> str:
    """The service's own message of a ClientError (tokens are never echoed by the services)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        err = response.get("Error", {})
        return str(err.get("Message") or response.get("error_description") or err.get("Code") or "")
    return type(exc).__name__
