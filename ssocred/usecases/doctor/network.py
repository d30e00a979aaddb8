"""The doctor checks that reach the SSO portal: the CA bundle, the endpoint, and the role assignment.

Example: ``ctx = Context("dev", None); endpoint(ctx).summary`` reads ``https://... answers (HTTP 401)``
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ssocred.errors import SsocredError
from ssocred.model.config_syntax import PATH_LIMIT, clean, section_label
from ssocred.usecases.doctor.check import FAIL, PASS, SKIP, WARN, Check, Context

#: Sent as the bearer token of the reachability probe: any answer, even 401, proves the way is open.
PROBE_TOKEN = "ssocred-doctor-probe"  # noqa: S105 - a placeholder, not a credential


# --- 7. ca_bundle ---------------------------------------------------------------------------------


def ca_bundle(ctx: Context) -> Check:
    """``AWS_CA_BUNDLE`` (else the profile's ``ca_bundle``) holds PEM certificates: ``ca_bundle(ctx).summary``."""
    import ssl

    value = os.environ.get("AWS_CA_BUNDLE")
    source, unset = "AWS_CA_BUNDLE", "unset AWS_CA_BUNDLE"
    if not value and ctx.cfg is not None:
        name = ctx.profile or "default"
        prof = ctx.cfg.profiles.get(name)
        value = prof.values.get("ca_bundle") if prof else None
        source = f"ca_bundle in {section_label('profile', name)}"
        unset = f"remove ca_bundle from {section_label('profile', name)}"
    if not value:
        return Check("ca_bundle", PASS, "no CA bundle set: the system/certifi default is used")
    path = os.path.expanduser(value)
    shown = clean(value, PATH_LIMIT)
    fix = f"point {source} at your proxy's CA certificate file (PEM), or {unset}"
    ctx.ca_ok = False
    if not os.path.exists(path):
        return Check("ca_bundle", FAIL, f"{source} is {shown}, which does not exist", fix)
    if not os.path.isfile(path):
        return Check("ca_bundle", FAIL, f"{source} is {shown}, which is not a file", fix)
    try:
        count = ssl.create_default_context(cafile=path).cert_store_stats()["x509"]
    except (ssl.SSLError, OSError, ValueError) as exc:
        reason = exc.reason if isinstance(exc, ssl.SSLError) and exc.reason else type(exc).__name__
        return Check("ca_bundle", FAIL, f"{source} ({shown}) holds no usable PEM certificate ({reason})", fix)
    ctx.ca_ok = True
    return Check("ca_bundle", PASS, f"{source} = {shown} ({count} certificate{'s' if count != 1 else ''})")


# --- 8. endpoint ----------------------------------------------------------------------------------


def endpoint(ctx: Context) -> Check:
    """The SSO portal answers at the URL botocore uses (overrides, proxy and CA applied): ``endpoint(ctx).status``.

    Only the portal's own JSON answer passes: a 5xx, or a page that is not JSON (a proxy's or a
    captive portal's HTML, whatever its status), fails as ``process`` would.
    """
    from ssocred.adapters import aws

    if ctx.target is None:
        return Check("endpoint", SKIP, "no SSO region known (see config)")
    if not ctx.ca_ok:
        return Check("endpoint", SKIP, "the CA bundle is unusable (see ca_bundle)")
    try:
        # One attempt, short timeouts: the normal client's retries are far too slow for a diagnosis.
        client = aws.client("sso", ctx.target.region, attempts=1, timeout=10)
    except SsocredError as exc:
        return Check("endpoint", FAIL, f"cannot create the SSO portal client: {exc.message}",
                     "check sso_region and AWS_ENDPOINT_URL_SSO")
    url = str(client.meta.endpoint_url)
    seen: dict[str, Any] = {}
    client.meta.events.register("before-parse.sso.ListAccounts", lambda response_dict, **_: seen.update(response_dict))
    code = None
    try:
        client.list_accounts(accessToken=PROBE_TOKEN, maxResults=1)
    except Exception as exc:
        if aws.is_client_error(exc):
            code = aws.error_code(exc)
        elif not aws.is_network_error(exc):
            return Check("endpoint", FAIL, f"the request to {url} failed ({type(exc).__name__})",
                         "check sso_region and AWS_ENDPOINT_URL_SSO")
        else:
            err = aws.network_error(exc, url)
            return Check("endpoint", FAIL, err.message, err.fix)
    return _answer(ctx, url, seen.get("status_code", "?"), seen.get("headers") or {}, seen.get("body"), code)


def _answer(ctx: Context, url: str, status: Any, headers: Mapping[str, str], body: Any, code: str | None) -> Check:
    """The verdict on the probe's answer: the portal's JSON passes, anything else names who answered."""
    kind, parsed = _parse_body(headers, body)
    in_the_way = ("check HTTPS_PROXY and NO_PROXY (or sign in to the network's captive portal); "
                  "AWS_ENDPOINT_URL_SSO, when set, must point at the SSO portal")
    if kind != "json":
        return Check("endpoint", FAIL, f"{url} answered HTTP {status} with {kind}, not the SSO portal's JSON: a "
                     "proxy, firewall or captive portal may be in the way", in_the_way)
    named = f"HTTP {status}" + (f", {clean(code, 60)}" if code and code != str(status) else "")
    if not isinstance(status, int) or status >= 500:
        return Check("endpoint", FAIL, f"{url} answered with a server error ({named}): the SSO portal, or a proxy in "
                     "front of it, is failing", "try again in a few minutes; if it persists, check HTTPS_PROXY "
                     "and the AWS Health Dashboard for IAM Identity Center")
    if status == 429:
        ctx.endpoint_ok = True
        return Check("endpoint", WARN, f"{url} answers, but is throttling requests ({named})",
                     "wait a minute; many parallel callers share one rate limit")
    if 200 <= status < 300 and not (isinstance(parsed, dict) and isinstance(parsed.get("accountList"), list)):
        return Check("endpoint", FAIL, f"{url} answered {named} without an account list, which the SSO portal "
                     "never does: something else answers in its place", in_the_way)
    if status >= 300 and status not in (401, 403):
        # The portal answers 401 to the made-up probe token; anything else was said by something in between.
        return Check("endpoint", FAIL, f"{url} answered {named}, where the SSO portal answers HTTP 401: a proxy or "
                     "firewall in the way may be changing requests", in_the_way)
    ctx.endpoint_ok = True
    return Check("endpoint", PASS, f"{url} answers (HTTP {status})")


def _parse_body(headers: Mapping[str, str], body: Any) -> tuple[str, Any]:
    """``("json", value)``, or what came instead: ``_parse_body({}, b"<html>") == ("an HTML page", None)``."""
    import json

    data = body if isinstance(body, bytes) else b""
    head = data.lstrip()[:64].lower()
    declared = next((str(v) for k, v in headers.items() if k.lower() == "content-type"), "").lower()
    if not head:
        return "an empty body", None
    if "html" in declared or head.startswith((b"<!doctype", b"<html", b"<head", b"<body")):
        return "an HTML page", None
    try:
        return "json", json.loads(data)
    except ValueError:
        return ("truncated JSON" if head.startswith((b"{", b"[")) else "plain text"), None


# --- 9. access ------------------------------------------------------------------------------------


def access(ctx: Context) -> Check:
    """The profile's role is among ListAccountRoles of its account: ``access(ctx).summary``."""
    from ssocred.adapters.portal import Portal, TokenRejected
    from ssocred.errors import AccessDenied

    if not (ctx.account and ctx.role):
        return Check("access", SKIP, "no account and role to check (select a profile that names them)")
    if ctx.token is None or ctx.target is None:
        return Check("access", SKIP, "no usable SSO token (see token)")
    if not ctx.endpoint_ok:
        return Check("access", SKIP, "the SSO portal cannot be reached (see endpoint)")
    account, role = clean(ctx.account), clean(ctx.role)
    fix = ("ask an admin to assign it (they can check with ssocred discover or aws sso-admin "
           "list-account-assignments); ssocred accounts lists what you have")
    try:
        portal = Portal(ctx.target.region)
        try:
            roles = portal.roles(ctx.token.access_token, ctx.account)
        except AccessDenied:
            ids = ", ".join(a.account_id for a in portal.accounts(ctx.token.access_token)) or "none"
            return Check("access", FAIL, f"role {role} is not assigned to you in account {account} (you have no role "
                         f"in that account; your accounts: {ids})", fix)
    except TokenRejected:
        # Revoked on the service side (a logout elsewhere): the token check could not know.
        _record_rejection(ctx)
        ctx.results["token"] = Check("token", FAIL, f"the portal rejected the token of SSO session "
                                     f"'{clean(ctx.key or '')}' (revoked or logged out elsewhere)", ctx.login_fix())
        return Check("access", SKIP, "no usable SSO token (see token)")
    except SsocredError as exc:  # what fails this listing fails process's GetRoleCredentials as well
        return Check("access", FAIL, f"could not list your roles: {exc.message}", exc.fix, exit_code=exc.exit_code)
    if ctx.role in roles:
        assigned = f"role {role} is assigned to you in account {account}"
        return _chain_access(ctx, assigned) if ctx.chain is not None else Check("access", PASS, assigned)
    have = ", ".join(clean(r) for r in roles) or "none"
    return Check("access", FAIL, f"role {role} is not assigned to you in account {account} (you have: {have})", fix)


def _chain_access(ctx: Context, assigned: str) -> Check:
    """A chained profile's access: its source role is assigned, and each AssumeRole of the chain works."""
    from ssocred.adapters.store import Store
    from ssocred.model.sso import iso_z
    from ssocred.usecases.chain import credentials_for

    assert ctx.chain is not None
    last = ctx.chain.last
    try:
        creds = credentials_for(ctx.store or Store(), ctx.chain)
    except SsocredError as exc:
        return Check("access", FAIL, f"{assigned}, but assuming {clean(last.role_arn)} failed: {exc.message}",
                     exc.fix, exit_code=exc.exit_code)
    return Check("access", PASS, f"{assigned}; assuming {clean(last.role_arn)} works (credentials until "
                 f"{iso_z(creds.expiration)})")


def _record_rejection(ctx: Context) -> None:
    """Note in the index that the portal refused the token, so that ``status`` shows it too."""
    import time

    if ctx.store is None or ctx.key is None or ctx.token is None:
        return
    try:
        ctx.store.mark_rejected(ctx.key, ctx.token, time.time())
    except SsocredError:
        pass  # the index only explains; the check's verdict stands
