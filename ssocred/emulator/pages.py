"""The HTML pages a browser sees: sign-in approval, device approval, errors, and an index."""

from __future__ import annotations

from html import escape

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;color:#16191f}"
    "button{font-size:1rem;padding:.5rem 1.5rem;margin-right:.75rem;cursor:pointer}"
    "#allow{background:#ff9900;border:1px solid #ec7211}"
    "code{background:#f2f3f3;padding:.1rem .3rem}"
)


def page(title: str, body: str) -> str:
    """A complete HTML document; ``body`` must already be escaped."""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>\n"
        f"<body><h1>{escape(title)}</h1>\n{body}\n</body></html>\n"
    )


def approval(title: str, action: str, hidden: dict[str, str], lines: list[str]) -> str:
    """A page asking the user to allow or deny, with buttons ``#allow`` and ``#deny``."""
    fields = "".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">' for name, value in hidden.items()
    )
    text = "".join(f"<p>{escape(line)}</p>" for line in lines)
    form = (
        f'<form method="post" action="{escape(action)}">{fields}'
        '<button id="allow" type="submit" name="decision" value="allow">Allow</button>'
        '<button id="deny" type="submit" name="decision" value="deny">Deny</button></form>'
    )
    return page(title, text + form)


def message(title: str, text: str) -> str:
    """A page that only states something."""
    return page(title, f'<p id="message">{escape(text)}</p>')


def device_entry() -> str:
    """A form to type a user code into."""
    form = (
        '<form method="get" action="/device"><label for="user_code">Code </label>'
        '<input id="user_code" name="user_code" autocomplete="off" autofocus>'
        '<button id="submit" type="submit">Next</button></form>'
    )
    return page("Authorize a device", form)


def index(base_url: str) -> str:
    """The landing page: how to point clients at this emulator."""
    url = escape(base_url)
    body = (
        "<p>A local AWS IAM Identity Center emulator (sso-oidc, SSO portal, STS GetCallerIdentity and AssumeRole).</p>"
        "<p>Point AWS SDKs at it with:</p><pre>"
        f"AWS_ENDPOINT_URL_SSO_OIDC={url}\nAWS_ENDPOINT_URL_SSO={url}\nAWS_ENDPOINT_URL_STS={url}</pre>"
        '<p>Counters: <a href="/_stats">/_stats</a>. Device approval: <a href="/device">/device</a>.</p>'
    )
    return page("ssocred emulator", body)
