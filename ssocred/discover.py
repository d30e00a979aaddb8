"""``ssocred discover``: the admin view of IAM Identity Center, and the [sso-session] section for it.

Example: ``ssocred discover --profile mgmt --write-config``
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ssocred.configparse import clean
from ssocred.errors import UsageError
from ssocred.naming import name_problem
from ssocred.render import Report, columns

if TYPE_CHECKING:
    from ssocred.admin import Account, Admin, Assignment, Instance, PermissionSet, Principal

T = TypeVar("T")
R = TypeVar("R")

#: Calls in flight at once: fast on large organizations, well below the services' throttling limits.
WORKERS = 8
#: The registration scopes of the written [sso-session].
SCOPES = ("sso:account:access",)
_ISO_DURATION = re.compile(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?")


def duration_seconds(iso: str) -> int | None:
    """Seconds of an ISO 8601 duration: ``duration_seconds("PT1H30M") == 5400``; None if unreadable."""
    match = _ISO_DURATION.fullmatch(iso.strip())
    if not match or iso.strip() in ("P", "PT") or iso.strip().endswith("T"):
        return None
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def human_duration(iso: str) -> str:
    """``human_duration("PT8H") == "8h"``, ``human_duration("PT1H30M") == "1h 30m"``; "" if unreadable."""
    total = duration_seconds(iso)
    if total is None:
        return ""
    parts = [(total // 86400, "d"), (total % 86400 // 3600, "h"), (total % 3600 // 60, "m"), (total % 60, "s")]
    return " ".join(f"{n}{unit}" for n, unit in parts if n) or "0s"


def session_section(name: str, start_url: str, region: str, scopes: Sequence[str] = SCOPES) -> str:
    """The config text of an sso-session, e.g. ``session_section("corp", url, "us-east-1")``."""
    from ssocred.configedit import section_text, sso_session_values

    return section_text(f"sso-session {name}", sso_session_values(start_url, region, tuple(scopes)))


def _parallel(work: Callable[[T], R], items: Sequence[T], label: str) -> list[R]:
    """``work`` over ``items`` on a few threads, results in input order; the first failure stops the rest."""
    from ssocred.parallel import ItemFailed, each

    try:
        return each(work, items, label, workers=WORKERS)
    except ItemFailed as failed:
        raise failed.error from None


def _instance(i: Instance) -> dict[str, Any]:
    return {
        "instance_arn": i.arn,
        "identity_store_id": i.identity_store_id,
        "region": i.region,
        "portal_url": i.portal_url,
        "name": i.name,
        "owner_account_id": i.owner_account_id,
        "status": i.status,
    }


def _accounts(admin: Admin, instance: Instance, sets: list[PermissionSet],
              notes: list[str]) -> tuple[str, list[Account], list[tuple[str, str]]]:
    """Where to look for assignments: (source, accounts, (account id, permission set ARN) pairs)."""
    from ssocred.admin import Account, Unavailable

    try:
        accounts = admin.accounts()
        reason = "" if accounts else "AWS Organizations listed no accounts"
    except Unavailable as exc:
        accounts, reason = [], exc.reason
    if accounts:
        return "organizations", accounts, [(a.id, s.arn) for a in accounts for s in sets]
    # Every assignment provisions its permission set into the account, so these accounts cover them all.
    found = _parallel(lambda s: admin.provisioned_accounts(instance.arn, s.arn), sets,
                      "Finding accounts")
    pairs = sorted({(account_id, s.arn) for s, ids in zip(sets, found, strict=True) for account_id in ids})
    notes.append(f"{reason}: accounts are the ones where permission sets are provisioned, without names "
                 "(read with organizations:ListAccounts for the full list)")
    return "assignments", [Account(account_id) for account_id in sorted({a for a, _ in pairs})], pairs


def _principals(admin: Admin, store_id: str, assignments: list[Assignment],
                notes: list[str]) -> dict[tuple[str, str], Principal]:
    """Names of every distinct principal, each looked up once; ids where a name cannot be read."""
    import threading

    from ssocred.admin import Principal

    keys = sorted({(a.principal_type, a.principal_id) for a in assignments})
    denied = threading.Event()

    def look(key: tuple[str, str]) -> Principal:
        # After one "access denied" the rest would be denied too: skip the calls.
        if denied.is_set():
            return Principal(key[1], found=False, problem="access denied")
        found = admin.principal(store_id, *key)
        if found.problem == "access denied":
            denied.set()
        return found

    names = dict(zip(keys, _parallel(look, keys, "Looking up principals"), strict=True))
    missing = [p for p in names.values() if not p.found]
    if missing:
        problems = ", ".join(sorted({p.problem for p in missing}))
        notes.append(f"{len(missing)} of {len(keys)} principal names could not be read ({problems}); shown by id")
    return names


def discover(admin: Admin, session_name: str | None = None) -> dict[str, Any]:
    """The admin view as JSON-ready data, e.g. ``discover(Admin.open("mgmt"))["instance"]["portal_url"]``."""
    from ssocred.errors import ConfigError

    notes: list[str] = []
    instances = admin.instances()
    if not instances:
        raise ConfigError(
            f"no IAM Identity Center instance in {admin.region} for these credentials",
            fix="run with AWS_REGION set to the region where IAM Identity Center is enabled, using the "
            "management account or a delegated administrator",
        )
    instance = instances[0]
    if len(instances) > 1:
        notes.append(f"{len(instances)} instances found; showing {instance.arn}")
    arns = admin.permission_set_arns(instance.arn)
    sets = _parallel(lambda arn: admin.permission_set(instance.arn, arn), arns, "Reading permission sets")
    sets.sort(key=lambda s: (s.name.lower(), s.arn))
    source, accounts, pairs = _accounts(admin, instance, sets, notes)
    found = _parallel(lambda pair: admin.assignments(instance.arn, *pair), pairs, "Listing assignments")
    assignments = sorted({a for batch in found for a in batch},
                         key=lambda a: (a.account_id, a.permission_set_arn, a.principal_type, a.principal_id))
    names = _principals(admin, instance.identity_store_id, assignments, notes)
    by_account = {a.id: a for a in accounts}
    by_set = {s.arn: s for s in sets}
    rows: list[dict[str, Any]] = []
    for a in assignments:
        principal = names[(a.principal_type, a.principal_id)]
        ps = by_set.get(a.permission_set_arn)
        rows.append({
            "account_id": a.account_id,
            "account_name": by_account[a.account_id].name if a.account_id in by_account else "",
            "permission_set_name": ps.name if ps else a.permission_set_arn.rsplit("/", 1)[-1],
            "permission_set_arn": a.permission_set_arn,
            "principal_type": a.principal_type,
            "principal_id": a.principal_id,
            "principal_name": principal.name,
            "principal_display_name": principal.display_name,
            "principal_found": principal.found,
        })
    rows.sort(key=lambda r: (r["account_name"].lower(), r["account_id"], r["permission_set_name"].lower(),
                             r["principal_type"], r["principal_name"].lower(), r["principal_id"]))
    name = session_name or instance.identity_store_id
    return {
        "profile": admin.profile,
        "instance": _instance(instance),
        "instances": [_instance(i) for i in instances],
        "accounts_source": source,
        "accounts": [
            {"id": a.id, "name": a.name, "email": a.email, "status": a.status}
            for a in sorted(accounts, key=lambda a: (a.name.lower(), a.id))
        ],
        "permission_sets": [
            {"name": s.name, "arn": s.arn, "session_duration": s.session_duration,
             "session_duration_text": human_duration(s.session_duration), "description": s.description}
            for s in sets
        ],
        "assignments": rows,
        "notes": notes,
        "sso_session": {
            "name": name,
            "start_url": instance.portal_url,
            "region": instance.region,
            "registration_scopes": list(SCOPES),
            "config_text": session_section(name, instance.portal_url, instance.region),
            "written": False,
            "changed": False,
            "already_configured_as": [],
            "path": "~/.aws/config",
        },
    }


def _configured_as(start_url: str) -> list[str]:
    """Names of [sso-session] sections that already use ``start_url`` (best effort: [] on a bad file)."""
    from ssocred import config
    from ssocred.errors import ConfigError

    try:
        cfg = config.load()
    except ConfigError:
        return []
    want = start_url.rstrip("/#").lower()
    return sorted(n for n, s in cfg.sso_sessions.items() if s.start_url.strip().rstrip("/#").lower() == want)


def _ssocred_credentials_first(profile: str) -> None:
    """For a profile whose credentials come from ``ssocred process``, get them here first.

    A failure (not logged in, say) is then ssocred's own line and exit code, rather than botocore's
    "Error when retrieving credentials from custom-process" around it. Example:
    ``_ssocred_credentials_first("dev")`` raises LoginRequired when session 'corp' is not logged in.
    """
    from ssocred import config
    from ssocred.credentials import role_credentials
    from ssocred.errors import ConfigError
    from ssocred.process_args import from_line
    from ssocred.store import Store

    try:
        cfg = config.load()
    except ConfigError:
        return  # Admin.open reports the config its own way
    found = cfg.profiles.get(profile)
    line = found.credential_process if found is not None else None
    if line is None:
        return  # botocore resolves other credentials, and Admin.open reports their failures
    try:
        if from_line(line) is None:
            return
    except ValueError:
        return  # botocore cannot split the line either
    except UsageError:
        pass  # ssocred_target names the problem, with the exit code ssocred process gives it
    target = cfg.ssocred_target(profile)
    role_credentials(Store(), target.session, target.account_id, target.role_name)


def _open(profile: str | None) -> Admin:
    """``Admin.open`` with failures to get credentials as one line (botocore raises some while making clients)."""
    from ssocred.admin import Admin, translate
    from ssocred.errors import SsocredError

    try:
        return Admin.open(profile, WORKERS)
    except SsocredError:
        raise
    except Exception as exc:
        raise translate(exc, "getting the AWS credentials", profile, "the AWS endpoints") from None


def command(args: argparse.Namespace) -> Report:
    """``ssocred discover [--profile MGMT] [--write-config] [--session-name NAME]``."""
    from ssocred import paths
    from ssocred.config import display_path

    session_name = getattr(args, "session_name", None)
    if session_name is not None and name_problem(session_name):
        raise UsageError(f"--session-name {clean(session_name)!r} is not a usable section name",
                         fix="use letters, digits and . _ - (e.g. --session-name corp)")
    profile = getattr(args, "profile", None) or os.environ.get("AWS_PROFILE") or None
    if profile is not None:
        _ssocred_credentials_first(profile)
    data = discover(_open(profile), session_name)
    session = data["sso_session"]
    session["already_configured_as"] = [
        n for n in _configured_as(session["start_url"]) if n != session["name"]
    ]
    session["path"] = display_path(paths.aws_config_file())
    if getattr(args, "write_config", False):
        from ssocred.configedit import write_sso_session

        session["changed"] = write_sso_session(session["name"], session["start_url"], session["region"], SCOPES)
        session["written"] = True
    return Report("discover", data)


def _session_duration(s: dict[str, Any]) -> str:
    """``"PT8H (8h)"``; the raw value alone when it is not a duration, "-" when empty."""
    iso, text = s["session_duration"], s["session_duration_text"]
    return f"{iso} ({text})" if text else (clean(iso, 30) or "-")


def text_discover(data: dict[str, Any]) -> str:
    """The text layout of ``ssocred discover``: ``print(text_discover(command(args).data))``."""
    inst = data["instance"]
    who = f" (profile {clean(data['profile'])})" if data.get("profile") else ""
    lines = [
        f"IAM Identity Center{who}",
        f"  instance ARN:       {inst['instance_arn']}",
        f"  identity store id:  {inst['identity_store_id']}",
        f"  region:             {inst['region']}",
        f"  portal URL:         {inst['portal_url']}",
    ]
    others = [i for i in data["instances"] if i["instance_arn"] != inst["instance_arn"]]
    if others:
        lines.append("  other instances (not shown below): "
                     + ", ".join(f"{i['instance_arn']} ({i['identity_store_id']})" for i in others))
    sets = data["permission_sets"]
    lines += ["", f"Permission sets ({len(sets)}):"]
    if sets:
        lines += ["  " + row for row in columns(
            ("NAME", "SESSION DURATION", "DESCRIPTION"),
            [(clean(s["name"], 60), _session_duration(s), clean(s["description"], 70)) for s in sets])]
    else:
        lines.append("  none")
    accounts = data["accounts"]
    organizations = data["accounts_source"] == "organizations"
    source = "from AWS Organizations" if organizations else "with provisioned permission sets"
    assigned = {r["account_id"] for r in data["assignments"]}
    lines += ["", f"Accounts: {len(accounts)} ({source}), {len(assigned)} with assignments"]
    idle = [a for a in accounts if a["id"] not in assigned]
    if idle:
        lines.append("  without assignments: "
                     + ", ".join(f"{a['id']} ({clean(a['name'], 40)})" if a["name"] else a["id"] for a in idle))
    rows = data["assignments"]
    lines += ["", f"Assignments ({len(rows)}):"]
    if rows:
        lines += ["  " + row for row in columns(
            ("ACCOUNT ID", "ACCOUNT NAME", "PERMISSION SET", "PRINCIPAL TYPE", "PRINCIPAL"),
            [(r["account_id"], clean(r["account_name"], 40) or "-", clean(r["permission_set_name"], 40),
              r["principal_type"], clean(r["principal_name"], 60) + ("" if r["principal_found"] else " (unknown)"))
             for r in rows])]
    else:
        lines.append("  none")
    if data["notes"]:
        lines += ["", "Notes:"] + [f"  - {note}" for note in data["notes"]]
    session = data["sso_session"]
    path = session["path"]
    lines.append("")
    if session["written"]:
        if session["changed"]:
            lines.append(f"Wrote [sso-session {session['name']}] to {path}.")
        else:
            lines.append(f"{path} already has [sso-session {session['name']}] with these settings; nothing changed.")
    else:
        if session["already_configured_as"]:
            names = ", ".join(session["already_configured_as"])
            lines.append(f"{path} already uses this portal in [sso-session {names}].")
        lines.append(f"Add this to {path} (or run again with --write-config):")
        lines.append("")
        lines += session["config_text"].splitlines()
    lines += ["", f"Then log in: ssocred login --sso-session {session['name']}"]
    return "\n".join(lines)
