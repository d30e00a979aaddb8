"""Request and response values passed between the HTTP layer and the service handlers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs


@dataclass(frozen=True)
class Request:
    """One parsed HTTP request; header names are lower-cased."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    base_url: str
    request_id: str = ""

    def header(self, name: str) -> str | None:
        """The value of one header, or None."""
        return self.headers.get(name.lower())

    def arg(self, name: str) -> str | None:
        """The first value of one query parameter, or None."""
        values = self.query.get(name)
        return values[0] if values else None

    def form(self) -> dict[str, str]:
        """The body parsed as ``application/x-www-form-urlencoded`` (first value of each name)."""
        parsed = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        return {name: values[0] for name, values in parsed.items()}


@dataclass
class Response:
    """One HTTP response; Content-Length is added when it is sent."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_response(payload: Any, status: int = 200) -> Response:
    """A JSON response."""
    return Response(status, json.dumps(payload).encode(), [("Content-Type", "application/json")])


def html_response(text: str, status: int = 200) -> Response:
    """An HTML page."""
    headers = [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")]
    return Response(status, text.encode(), headers)


def redirect(location: str) -> Response:
    """A 302 redirect."""
    return Response(302, b"", [("Location", location), ("Cache-Control", "no-store")])
