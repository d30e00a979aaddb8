"""Unsigned boto3 clients for the SSO services: bounded time, checked answers, server text made safe.

Clients are plain boto3 clients, so ``AWS_ENDPOINT_URL_SSO_OIDC`` / ``AWS_ENDPOINT_URL_SSO``,
``AWS_CA_BUNDLE`` and proxies behave exactly as in every other AWS tool. Three things are ours:

* **time**: every call, retries included, ends within ``budget()`` seconds (``$SSOCRED_TIMEOUT``,
  default 30: SDKs give a credential process a minute at most, some five seconds); throttling,
  5xx answers and dropped connections are retried with backoff while time is left;
* **answers**: a 2xx answer without the members ssocred needs (an HTML page from a captive
  portal, truncated JSON, ``{}``) is a ServiceError that says what came back;
* **server text**: messages from servers are cut short and stripped of anything shaped like a
  token, a secret or a header dump before any ssocred message quotes them.

Example: ``invoke(client("sso", "us-east-1"), "list_accounts", accessToken=t, expect={"accountList": list})``
"""

from __future__ import annotations

import functools
import math
import os
import random
import threading
import time
from collections.abc import Mapping
from typing import Any

from ssocred.adapters.server_text import clean
from ssocred.errors import ConfigError, ServiceError

#: Seconds a call may take in all, retries included, unless ``$SSOCRED_TIMEOUT`` says otherwise.
DEFAULT_BUDGET = 30.0
#: A single attempt waits at most this long for the server to start answering ...
READ_TIMEOUT = 15.0
#: ... and this long to connect.
CONNECT_TIMEOUT = 5.0
#: Attempts of one call at most (throttled or failing fast, it still stops here).
MAX_ATTEMPTS = 8
#: The longest pause between two attempts.
MAX_BACKOFF = 5.0

#: botocore sessions are not thread-safe; the clients they make are (the daemon uses several threads).
_SESSION_LOCK = threading.Lock()
#: Where ``before-parse`` notes what the body of an answer was, for the checks below.
BODY_KEY = "SsocredBody"
_RETRY_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "RequestLimitExceeded", "RequestThrottled", "SlowDown",
    "RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete", "InternalServerException",
    "ServiceUnavailableException", "InternalFailure", "ServiceUnavailable",
})
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
#: Names of the services as users know them, for messages.
_LABELS = {"sso": "the SSO portal", "sso-oidc": "the SSO OIDC service", "sts": "STS"}
#: Services that answer in XML (the query protocol): for them an XML body is the service's own.
_XML_SERVICES = frozenset({"sts"})


def budget() -> float:
    """Seconds one call may take in all: ``$SSOCRED_TIMEOUT``, else 30; ``budget() == 30.0``."""
    raw = os.environ.get("SSOCRED_TIMEOUT", "").strip()
    if not raw:
        return DEFAULT_BUDGET
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"SSOCRED_TIMEOUT={raw[:20]!r} is not a number of seconds above 0",
                          fix="set it to e.g. 30, or unset it")
    return value


@functools.lru_cache(maxsize=1)
def _session() -> Any:
    # botocore's own session, not boto3's: the clients are the same, and boto3 would add 2 MB for nothing.
    import botocore.session

    return botocore.session.Session()


#: Environment variables that change what a client built now would do (endpoint, TLS, proxy).
_CLIENT_ENV = ("AWS_ENDPOINT_URL", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_CA_BUNDLE", "AWS_CONFIG_FILE",
               "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_DATA_PATH", "AWS_USE_FIPS_ENDPOINT",
               "AWS_USE_DUALSTACK_ENDPOINT", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy",
               "no_proxy")
#: Built clients by what they were built from; reused because building one costs tens of milliseconds
#: and allocations that stay, while a built botocore client is safe to share between threads.
_clients: dict[tuple[object, ...], Any] = {}


def _client_key(service: str, region: str, pool: int, attempts: int | None, timeout: float) -> tuple[object, ...]:
    """What a client depends on: ``("sso", "us-east-1", 10, None, 15.0, (("AWS_ENDPOINT_URL_SSO", "http://..."),))``."""
    names = (*_CLIENT_ENV, "AWS_ENDPOINT_URL_" + service.upper().replace("-", "_"))
    env = tuple((name, os.environ[name]) for name in names if name in os.environ)
    return service, region, pool, attempts, timeout, env


def client(service: str, region: str, *, pool: int = 10, attempts: int | None = None, timeout: float = READ_TIMEOUT
           ) -> Any:
    """An unsigned boto3 client for ``service`` ("sso-oidc" or "sso") in the SSO region, built once and shared.

    ``pool`` is the number of connections kept open: at least the threads that share the client.
    ``timeout`` bounds one attempt; ``invoke`` makes the attempts (``attempts=1``: a probe that
    expects to fail fast). botocore itself never retries: ``invoke`` does, within ``budget()``.
    The same arguments and endpoint settings give the same client: ``client("sso", "us-east-1") is
    client("sso", "us-east-1")``.
    """
    timeout = min(timeout, budget())  # one attempt never outlasts the whole call's budget
    key = _client_key(service, region, pool, attempts, timeout)
    made = _clients.get(key)
    if made is not None:
        return made
    # One build at a time: a botocore session is not thread-safe, and two threads building the same
    # client would both pay for it.
    with _SESSION_LOCK:
        made = _clients.get(key)
        if made is None:
            made = _clients[key] = checked(_build(service, region, pool, timeout), attempts)
    return made


def _build(service: str, region: str, pool: int, timeout: float) -> Any:
    """A new unsigned botocore client; the caller holds ``_SESSION_LOCK``."""
    import botocore.config
    from botocore import UNSIGNED
    from botocore.exceptions import BotoCoreError

    cfg = botocore.config.Config(
        signature_version=UNSIGNED, retries={"total_max_attempts": 1},
        connect_timeout=min(CONNECT_TIMEOUT, timeout), read_timeout=timeout, max_pool_connections=pool,
    )
    try:
        return _session().create_client(service, region_name=region, config=cfg)
    except BotoCoreError as exc:
        raise ServiceError(f"cannot create the {service} client: {clean(str(exc))}") from None


def checked(made: Any, attempts: int | None = None) -> Any:
    """``made`` (a botocore client) with its answers' bodies noted for ``invoke``'s checks: ``checked(sts)``."""
    made.meta.events.register("before-parse", _note_body)
    made._ssocred_attempts = attempts
    return made


def _note_body(response_dict: Mapping[str, Any], customized_response_dict: dict[str, Any], **_: Any) -> None:
    """Record what an answer's body was (``json``, ``html``, ``text``, ``empty``) before botocore parses it."""
    customized_response_dict[BODY_KEY] = body_kind(response_dict.get("headers") or {}, response_dict.get("body"))


def body_kind(headers: Mapping[str, str], body: object) -> str:
    """What came back: ``body_kind({"content-type": "text/html"}, b"<html>") == "html"``."""
    data = body if isinstance(body, bytes) else b""
    text = data.lstrip()[:64].lower()
    kind = str(next((v for k, v in headers.items() if k.lower() == "content-type"), "")).lower()
    if not text:
        return "empty"
    if "html" in kind or text.startswith((b"<!doctype", b"<html", b"<head", b"<body")):
        return "html"
    if text.startswith(b"<"):
        return "xml"
    import json

    try:
        json.loads(data)
    except ValueError:
        return "truncated JSON" if "json" in kind or text.startswith((b"{", b"[")) else "text"
    return "json"


def invoke(client_: Any, op: str, *, expect: Mapping[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    """Call ``op`` with retries inside ``budget()``; the answer must hold ``expect`` (name: type, nested).

    Transport failures and answers that did not come from the service (``foreign_answer``) become
    one-line ServiceErrors; the service's own errors (botocore ClientError) propagate for the
    adapter to translate, after any retry they deserved.
    Example: ``invoke(c, "create_token", expect={"accessToken": str, "expiresIn": int}, **params)``
    """
    from botocore.exceptions import ClientError

    limit = getattr(client_, "_ssocred_attempts", None) or MAX_ATTEMPTS
    deadline = time.monotonic() + budget()
    service = str(client_.meta.service_model.service_name)
    endpoint = str(client_.meta.endpoint_url)
    attempt = 0
    while True:
        attempt += 1
        try:
            result: dict[str, Any] = getattr(client_, op)(**kwargs)
            break
        except ClientError as exc:
            foreign = foreign_answer(exc, service)
            if foreign is not None:
                raise foreign from None  # a proxy's or portal's page: trying again changes nothing
            if attempt >= limit or not retryable(exc) or not _pause(attempt, deadline):
                raise
        except Exception as exc:
            if not is_network_error(exc):
                raise
            if attempt >= limit or _hopeless(exc) or not _pause(attempt, deadline):
                raise network_error(exc, endpoint) from None
    if expect:
        check_answer(result, expect, service, op)
    return result


def _hopeless(exc: BaseException) -> bool:
    """A TLS failure the next attempt would meet again: a certificate no CA vouches for, or an unusable bundle."""
    from botocore.exceptions import SSLError

    if not isinstance(exc, SSLError):
        return False
    _, path = ca_bundle()
    return "CERTIFICATE_VERIFY_FAILED" in str(exc) or (path is not None and ca_bundle_problem(path) is not None)


def _pause(attempt: int, deadline: float) -> bool:
    """Sleep before the next attempt; False when the budget has no room for one."""
    delay = random.uniform(0, min(MAX_BACKOFF, 0.2 * 2 ** attempt))  # noqa: S311 - jitter, not a secret
    if time.monotonic() + delay + 0.5 > deadline:
        return False
    time.sleep(delay)
    return True


def retryable(exc: BaseException) -> bool:
    """Whether a service error may go away on its own (throttling, 5xx): ``retryable(exc)``."""
    response = getattr(exc, "response", None) or {}
    code = error_code(exc)
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if response.get(BODY_KEY) == "html":
        return False  # a proxy's page, not the service: trying again changes nothing
    return code in _RETRY_CODES or status in _RETRY_STATUS


def check_answer(result: Mapping[str, Any], expect: Mapping[str, Any], service: str, op: str) -> None:
    """ServiceError unless ``result`` holds every member of ``expect`` with its type (dicts nest).

    Example: ``check_answer({}, {"roleCredentials": dict}, "sso", "get_role_credentials")`` raises.
    """
    missing = _missing(result, expect)
    if missing is None:
        return
    kind = result.get(BODY_KEY, "json")
    what = {"html": "an HTML page", "text": "plain text", "empty": "an empty answer",
            "truncated JSON": "truncated JSON", "xml": f"XML without {missing}"}.get(kind, f"JSON without {missing}")
    label = _LABELS.get(service, service)
    raise ServiceError(
        f"{label} answered {_operation(op)} with {what}, not the answer it should give: a proxy or captive "
        "portal may be in the way",
        fix="check HTTPS_PROXY, NO_PROXY and the endpoint settings, then run: ssocred doctor",
    )


def _missing(result: Mapping[str, Any], expect: Mapping[str, Any], prefix: str = "") -> str | None:
    for name, kind in expect.items():
        value = result.get(name) if isinstance(result, Mapping) else None
        if isinstance(kind, Mapping):
            if not isinstance(value, Mapping):
                return prefix + name
            deeper = _missing(value, kind, f"{prefix}{name}.")
            if deeper:
                return deeper
        elif not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            return prefix + name
    return None


def _operation(op: str) -> str:
    """``"get_role_credentials"`` as the API names it: ``"GetRoleCredentials"``."""
    return "".join(part.capitalize() for part in op.split("_"))


def is_client_error(exc: BaseException) -> bool:
    """Whether ``exc`` is botocore's ClientError: the service (or what stands in for it) answered an error."""
    from botocore.exceptions import ClientError

    return isinstance(exc, ClientError)


def shell_split(line: str) -> list[str]:
    """A ``credential_process`` line split into words exactly as botocore splits it (ValueError if it cannot).

    Example: ``shell_split("ssocred process --profile 'my dev'") == ["ssocred", "process", "--profile", "my dev"]``
    """
    from botocore.compat import compat_shell_split

    words: list[str] = compat_shell_split(line)
    return words


def error_code(exc: BaseException) -> str | None:
    """The service error code of a botocore ClientError, e.g. ``"InvalidGrantException"``."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None


def foreign_answer(exc: BaseException, service: str) -> ServiceError | None:
    """The error for an answer that did not come from the service (an HTML error page), else None.

    Example: a proxy's ``403`` page gives "the SSO portal answered HTTP 403 with an HTML page ...".
    """
    response = getattr(exc, "response", None)
    kind = response.get(BODY_KEY) if isinstance(response, dict) else None
    if not isinstance(response, dict) or kind not in ("html", "text", "empty", "xml"):
        return None
    if kind == "xml" and service in _XML_SERVICES:
        return None
    if response.get("Error", {}).get("Code") and "x-amzn-errortype" in {
            k.lower() for k in response.get("ResponseMetadata", {}).get("HTTPHeaders", {})}:
        return None  # the service's own error, whatever its body
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
    body = {"html": "an HTML page", "text": "plain text", "empty": "an empty body", "xml": "XML"}[kind]
    return ServiceError(
        f"{_LABELS.get(service, service)} answered HTTP {status} with {body}, not an AWS answer: a proxy, "
        "firewall or captive portal may be in the way",
        fix="check HTTPS_PROXY, NO_PROXY and the endpoint settings, then run: ssocred doctor",
    )


def network_error(exc: BaseException, endpoint: str) -> ServiceError:
    """A one-line ServiceError for a connection, TLS or timeout failure talking to ``endpoint``."""
    from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError, SSLError

    if isinstance(exc, SSLError):
        return _tls_error(endpoint)
    if isinstance(exc, (ReadTimeoutError, ConnectTimeoutError)):
        return ServiceError(
            f"{endpoint} did not answer within {budget():g} s",
            fix="check the network and HTTPS_PROXY; SSOCRED_TIMEOUT sets how long to wait",
        )
    return ServiceError(
        f"cannot reach {endpoint} ({type(exc).__name__})",
        fix="check the network, HTTPS_PROXY and the sso_region",
    )


def _tls_error(endpoint: str) -> ServiceError:
    """TLS verification failed: name the CA bundle in use when that is the cause."""
    setting, path = ca_bundle()
    if path is None:
        return ServiceError(f"TLS certificate verification failed for {endpoint}",
                            fix="if a proxy intercepts TLS, set AWS_CA_BUNDLE to a PEM file with its CA certificate")
    problem = ca_bundle_problem(path)
    if problem:
        return ServiceError(f"the CA bundle {setting}={path} {problem}",
                            fix=f"point {setting} at a PEM file with your proxy's CA certificate, or unset it")
    return ServiceError(f"TLS certificate verification failed for {endpoint} with the CA bundle {setting}={path}",
                        fix=f"add the CA certificate of the proxy or server to {path}")


def ca_bundle() -> tuple[str, str | None]:
    """Which CA bundle botocore uses: ``("AWS_CA_BUNDLE", "/etc/proxy-ca.pem")``, or ``(..., None)``."""
    env = os.environ.get("AWS_CA_BUNDLE")
    if env:
        return "AWS_CA_BUNDLE", env
    try:
        configured = _session().get_config_variable("ca_bundle")
    except Exception:
        configured = None
    return "ca_bundle", str(configured) if configured else None


def ca_bundle_problem(path: str) -> str | None:
    """Why ``path`` cannot be a CA bundle, or None: ``ca_bundle_problem("/nope") == "does not exist"``."""
    if os.path.isdir(path):
        return "is a directory, not a file"
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 20)
    except FileNotFoundError:
        return "does not exist"
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if not head.strip():
        return "is empty"
    if b"-----BEGIN CERTIFICATE-----" not in head:
        return "holds no PEM certificate"
    return None


def is_network_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a botocore transport failure (not a service answer)."""
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError

    return isinstance(exc, (BotoConnectionError, HTTPClientError))
