"""A scriptable stand-in for a browser: ``BROWSER`` points here and it follows the redirects.

Used as ``BROWSER="python3 tests/support/browser.py %s"``: it GETs the authorize URL, follows the
emulator's redirect to the loopback callback, and exits. Environment knobs:
``FAKE_BROWSER_LOG`` (file to record URLs in), ``FAKE_BROWSER_IGNORE`` (never open anything),
``FAKE_BROWSER_DELAY`` (seconds to wait first), ``FAKE_BROWSER_STATE`` (replace the ``state``
the callback receives, as a forged redirect would).
"""

from __future__ import annotations

import http.client
import os
import sys
import time
import urllib.request
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


def _get(url: str) -> tuple[int, str | None]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=30)
    conn.request("GET", parts.path + ("?" + parts.query if parts.query else ""))
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp.status, resp.getheader("Location")


def main() -> int:
    """Open ``argv[1]`` the way a browser would (GET, follow redirects)."""
    url = sys.argv[1]
    log = os.environ.get("FAKE_BROWSER_LOG")
    if log:
        with open(log, "a") as fh:
            fh.write(url + "\n")
    if os.environ.get("FAKE_BROWSER_IGNORE"):
        return 0
    time.sleep(float(os.environ.get("FAKE_BROWSER_DELAY", "0")))
    forged = os.environ.get("FAKE_BROWSER_STATE")
    if not forged:
        with urllib.request.urlopen(url, timeout=30) as resp:
            resp.read()
        return 0
    status, location = _get(url)
    assert status == 302 and location, (status, location)
    parts = urlsplit(location)
    query = [(k, forged if k == "state" else v) for k, v in parse_qsl(parts.query)]
    _get(urlunsplit(parts._replace(query=urlencode(query))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
