"""The AWS console federation endpoint: a sign-in token for role credentials, and the login URL that uses it.

The endpoint follows the region's partition (botocore's partition data), or
``$AWS_ENDPOINT_URL_SIGNIN`` (a base URL; ``/federation`` is appended). Sign-in tokens and the
URLs that carry them grant console access: they are never logged or put in an error message.
Example: ``login_url(signin_token(creds, "eu-west-1"), "eu-west-1", console_home("eu-west-1"))``
"""

from __future__ import annotations

import functools
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import TYPE_CHECKING

from ssocred.adapters import aws
from ssocred.errors import ServiceError

if TYPE_CHECKING:
    from ssocred.model.sso import RoleCredentials

#: Partition -> (federation host, console host); the commercial console is regional.
_HOSTS = {
    "aws": ("signin.aws.amazon.com", "{region}.console.aws.amazon.com"),
    "aws-us-gov": ("signin.amazonaws-us-gov.com", "console.amazonaws-us-gov.com"),
    "aws-cn": ("signin.amazonaws.cn", "console.amazonaws.cn"),
}
ISSUER = "ssocred"


@functools.lru_cache(maxsize=8)
def partition(region: str) -> str:
    """``partition("us-gov-west-1") == "aws-us-gov"``; an unknown region counts as ``aws``.

    Cached: a boto3 session loads the endpoint data, and one sign-in asks three times.
    """
    import boto3.session

    name: str = boto3.session.Session().get_partition_for_region(region) or "aws"
    return name if name in _HOSTS else "aws"


def federation_url(region: str) -> str:
    """``https://signin.aws.amazon.com/federation`` for the region's partition, or ``$AWS_ENDPOINT_URL_SIGNIN``."""
    base = os.environ.get("AWS_ENDPOINT_URL_SIGNIN")
    if base:
        return base.rstrip("/") + "/federation"
    return f"https://{_HOSTS[partition(region)][0]}/federation"


def console_home(region: str) -> str:
    """``https://eu-west-1.console.aws.amazon.com/console/home?region=eu-west-1``, by partition."""
    host = _HOSTS[partition(region)][1].format(region=region)
    return f"https://{host}/console/home?region={urllib.parse.quote(region)}"


def signin_token(creds: RoleCredentials, region: str) -> str:
    """``getSigninToken`` for ``creds``: the token a login URL carries (valid 15 minutes)."""
    session = json.dumps({"sessionId": creds.access_key_id, "sessionKey": creds.secret_access_key,
                          "sessionToken": creds.session_token})
    endpoint = federation_url(region)
    query = urllib.parse.urlencode({"Action": "getSigninToken", "Session": session})
    body = _get(f"{endpoint}?{query}", endpoint)
    try:
        token = json.loads(body)["SigninToken"]
    except (ValueError, KeyError, TypeError):
        raise ServiceError(f"{endpoint} answered without a sign-in token",
                           fix="check AWS_ENDPOINT_URL_SIGNIN and HTTPS_PROXY") from None
    if not isinstance(token, str) or not token:
        raise ServiceError(f"{endpoint} answered without a sign-in token", fix="try again")
    return token


def login_url(token: str, region: str, destination: str) -> str:
    """The URL that signs the browser in and opens ``destination`` (it carries the token: treat it as a secret)."""
    query = urllib.parse.urlencode({"Action": "login", "Issuer": ISSUER, "Destination": destination,
                                    "SigninToken": token})
    return f"{federation_url(region)}?{query}"


def _get(url: str, endpoint: str) -> bytes:
    """GET ``url`` (the query carries credentials: only ``endpoint`` is ever named) within the time budget."""
    import ssl

    setting, bundle = aws.ca_bundle()
    problem = aws.ca_bundle_problem(bundle) if bundle else None
    if problem:
        raise ServiceError(f"the CA bundle {setting}={bundle} {problem}",
                           fix=f"point {setting} at a PEM file with your proxy's CA certificate, or unset it")
    try:
        context = ssl.create_default_context(cafile=bundle) if bundle else None
        with urllib.request.urlopen(url, timeout=aws.budget(), context=context) as answer:
            data: bytes = answer.read(1 << 16)
            return data
    except urllib.error.HTTPError as exc:
        raise ServiceError(f"{endpoint} refused the role credentials (HTTP {exc.code})",
                           fix="run the command again; if it persists, run: ssocred doctor") from None
    except ssl.SSLError:
        fix = f"add the CA certificate of the proxy or server to {bundle}" if bundle else \
            "if a proxy intercepts TLS, set AWS_CA_BUNDLE to a PEM file with its CA certificate"
        raise ServiceError(f"TLS certificate verification failed for {endpoint}", fix=fix) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ServiceError(f"cannot reach {endpoint} ({type(reason).__name__})",
                           fix="check the network and HTTPS_PROXY (AWS_ENDPOINT_URL_SIGNIN overrides the "
                           "endpoint)") from None
