"""Server text fit to quote in ssocred's messages: tags, echoed headers, tokens and secrets removed, cut short.

Messages from servers (and from whatever stands in for them: proxies, captive portals) reach the
user only through ``clean``. Example: ``clean("<h1>Denied</h1> Bearer abc123") == "Denied Bearer [redacted]"``
"""

from __future__ import annotations

import re

#: Server text is cut to this many characters in ssocred's messages.
MAX_SERVER_TEXT = 160
# A header echoed back (name: value), a bearer credential, or a query parameter holding a secret.
_HEADER = re.compile(
    r"(?i)\b(x-amz-sso[_-]bearer[_-]token|authorization|x-amz-security-token|x-amz-date|cookie|set-cookie|"
    r"proxy-authorization|bearer|basic|refreshToken|accessToken|clientSecret|sessionToken|secretAccessKey"
    r"|code_?verifier|device_?code)([\"']?\s*[:=]\s*[\"']?)([^\s,;\"'&}]+)")
#: An authorization scheme and the credential after it: ``Authorization: Bearer <token>``.
#: Only a token-like run (a digit or a symbol of base64 or JWT in it, or lower and upper case after the
#: first letter): "the basic plan" stays as it is.
_SCHEME = re.compile(r"\b([Bb]earer|BEARER|[Bb]asic|BASIC)(\s+)"
                     r"(?=\S*[0-9+/=._~-]|\S+[A-Z]\S*[a-z]|\S+[a-z]\S*[A-Z])([A-Za-z0-9._~+/=-]{6,})")
_TAG = re.compile(r"<[^>]{0,200}>")


def clean(text: str, limit: int = MAX_SERVER_TEXT) -> str:
    """Server text fit to quote: tags, headers, tokens and secrets removed, one line, cut short.

    Example: ``clean("denied; x-amz-sso_bearer_token: aoaXYZ...") == "denied; x-amz-sso_bearer_token: [redacted]"``
    """
    from ssocred.adapters.logs import MASK, REDACTOR

    text = _TAG.sub(" ", text)
    text = _SCHEME.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    text = _HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    text = REDACTOR.redact(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def service_message(exc: BaseException) -> str:
    """The service's own message of a ClientError, made safe to quote (``clean``)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        err = response.get("Error", {})
        return clean(str(err.get("Message") or response.get("error_description") or err.get("Code") or ""))
    return type(exc).__name__
