"""The admin view of IAM Identity Center (instances, permission sets, accounts, assignments) as data.

Example: ``run("mgmt")["instance"]["portal_url"]`` is ``https://d-1234567890.awsapps.com/start``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ssocred.errors import UsageError
from ssocred.model.timefmt import human_duration

if TYPE_CHECKING:
    from ssocred.adapters.admin import Account, Admin, Assignment, Instance, PermissionSet, Principal

T = TypeVar("T")
R = TypeVar("R")

#: Calls in flight at once: fast on large organizations, well below the services' throttling limits.
WORKERS = 8
#: The registration scopes of the written [sso-session].
SCOPES = ("sso:account:access",)


def session_section(name: str, start_url: str, region: str, scopes: Sequence[str] = SCOPES) -> str:
    """The config text of an sso-session, e.g. ``session_section("corp", url, "us-east-1")``."""
    from ssocred.adapters.config_file import section_text, sso_session_values

    return section_text(f"sso-session {name}", sso_session_values(start_url, region, tuple(scopes)))


def _parallel(work: Callable[[T], R], items: Sequence[T], label: str) -> list[R]:
    """``work`` over ``items`` on a few threads, results in input order; the first failure stops the rest."""
    from ssocred.usecases.parallel import ItemFailed, each

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
    from ssocred.adapters.admin import Account, Unavailable

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

    from ssocred.adapters.admin import Principal

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
    from ssocred.adapters import config_file
    from ssocred.errors import ConfigError

    try:
        cfg = config_file.load()
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
    from ssocred.adapters import config_file
    from ssocred.adapters.store import Store
    from ssocred.errors import ConfigError
    from ssocred.process_args import from_line
    from ssocred.usecases.credentials import role_credentials

    try:
        cfg = config_file.load()
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
    from ssocred.adapters.admin import Admin, translate
    from ssocred.errors import SsocredError

    try:
        return Admin.open(profile, WORKERS)
    except SsocredError:
        raise
    except Exception as exc:
        raise translate(exc, "getting the AWS credentials", profile, "the AWS endpoints") from None


def run(profile: str | None, session_name: str | None = None, write_config: bool = False) -> dict[str, Any]:
    """``ssocred discover``: the admin view seen through ``profile``, and its [sso-session] section.

    With ``write_config`` the section is written to the config file. Example:
    ``run("mgmt")["sso_session"]["config_text"]`` starts ``[sso-session ``.
    """
    from ssocred.adapters import paths
    from ssocred.adapters.paths import display_path

    if profile is not None:
        _ssocred_credentials_first(profile)
    data = discover(_open(profile), session_name)
    session = data["sso_session"]
    session["already_configured_as"] = [
        n for n in _configured_as(session["start_url"]) if n != session["name"]
    ]
    session["path"] = display_path(paths.aws_config_file())
    if write_config:
        from ssocred.adapters.config_file import write_sso_session

        session["changed"] = write_sso_session(session["name"], session["start_url"], session["region"], SCOPES)
        session["written"] = True
    return data
