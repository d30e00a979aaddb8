"""Profile names from a template, made safe for INI headers and shells; pure.

Example: ``profile_name("{account_name}.{role_name}", fields) == "Dev-Team.ReadOnlyAccess"``
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

DEFAULT_TEMPLATE = "{account_name}.{role_name}"
#: Placeholders a template may use.
FIELDS = ("account_name", "account_id", "account_email", "role_name", "session", "region")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Target:
    """One account × role of an SSO session: ``Target("corp", "111122223333", "Dev", "ReadOnly")``."""

    session: str
    account_id: str
    account_name: str
    role_name: str
    account_email: str = ""


def check_template(template: str) -> None:
    """Raise ValueError naming the problem unless ``template`` uses only known placeholders.

    Example: ``check_template("{account_id}-{role}")`` raises (``role`` is not a placeholder).
    """
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"template {template!r} is not valid: {exc}") from None
    used = False
    for _literal, field, spec, conversion in parts:
        if field is None:
            continue
        if field not in FIELDS or spec or conversion:
            known = ", ".join("{" + f + "}" for f in FIELDS)
            raise ValueError(f"template {template!r} uses {{{field}}}; placeholders are {known}")
        used = True
    if not used:
        raise ValueError(f"template {template!r} has no placeholder, so every profile would get the same name")


def safe_name(text: str) -> str:
    """``text`` reduced to letters, digits, ``.``, ``_`` and ``-``: ``safe_name("My Team/Dev") == "My-Team-Dev"``."""
    cleaned = _UNSAFE.sub("-", text).strip("-.")
    return re.sub(r"-{2,}", "-", cleaned) or "profile"


def name_problem(name: str) -> str | None:
    """None when ``name`` can head an INI section and pass a shell unquoted, else a hint.

    Example: ``name_problem("a b") == "use letters, digits, '.', '_' and '-' only (e.g. a-b)"``
    """
    return None if safe_name(name) == name else f"use letters, digits, '.', '_' and '-' only (e.g. {safe_name(name)})"


def profile_name(template: str, target: Target, region: str | None = None) -> str:
    """The safe profile name for ``target``: ``profile_name("{account_id}.{role_name}", t) == "1111.Dev"``."""
    values = {
        "account_name": target.account_name or target.account_id,
        "account_id": target.account_id,
        "account_email": target.account_email,
        "role_name": target.role_name,
        "session": target.session,
        "region": region or "",
    }
    return safe_name(template.format_map(values))


def assign_names(template: str, targets: Iterable[Target], region: str | None = None) -> dict[str, Target]:
    """Unique names for ``targets``: colliding names get ``-<account id>`` (then ``-<n>``) appended.

    Example: two accounts both named "dev" give ``dev.Admin-111111111111`` and ``dev.Admin-222222222222``.
    """
    by_name: dict[str, list[Target]] = {}
    for t in sorted(set(targets), key=lambda t: (t.account_id, t.role_name)):
        by_name.setdefault(profile_name(template, t, region), []).append(t)
    out: dict[str, Target] = {}
    for name, group in sorted(by_name.items()):
        if len(group) == 1:
            out[name] = group[0]
            continue
        for t in group:
            candidate, n = safe_name(f"{name}-{t.account_id}"), 2
            while candidate in by_name or candidate in out:
                candidate, n = safe_name(f"{name}-{t.account_id}-{n}"), n + 1
            out[candidate] = t
    return dict(sorted(out.items()))


def profile_values(
    command: str, target: Target, *, region: str | None = None, output: str | None = None
) -> Mapping[str, str]:
    """The keys ssocred writes into a generated profile, in order; ``command`` is already shell-quoted.

    Example: ``profile_values("ssocred", t)["credential_process"]
    == "ssocred process --sso-session corp --account-id 111122223333 --role-name Dev"``
    """
    from ssocred.process_args import Request, to_line

    request = Request(session=target.session, account=target.account_id, role=target.role_name)
    values = {
        "credential_process": to_line(request, command),
        "ssocred_managed": target.session,
    }
    if region:
        values["region"] = region
    if output:
        values["output"] = output
    return values
