"""Text layouts of accounts, configure, configure populate and whoami (render.py picks them by kind).

Example: ``text_whoami({"profile": "dev", "account": "1", "arn": "arn:...", "user_id": "AROA:me"})``
"""

from __future__ import annotations

from typing import Any

from ssocred.render import columns


def text_accounts(d: dict[str, Any]) -> str:
    """One line per account × role."""
    if not d["accounts"]:
        return f"No AWS account is assigned to you in SSO session '{d['session']}'."
    rows = [[a["account_id"], a["name"], ", ".join(a["roles"]) or "(no roles)"] for a in d["accounts"]]
    roles = sum(len(a["roles"]) for a in d["accounts"])
    return ("\n".join(columns(["ACCOUNT", "NAME", "ROLES"], rows))
            + f"\n\n{len(d['accounts'])} accounts, {roles} roles in SSO session '{d['session']}'.")


def text_populate(d: dict[str, Any]) -> str:
    """The diff (dry run) or what was written, then a summary."""
    lines = []
    if d["dry_run"]:
        lines.append(d["diff"] or f"No change to {d['config']}.")
    lines += _some("+", d["added"])
    lines += _some("~", [f"{r['from']} -> {r['to']}" for r in d["renamed"]])
    lines += _some("*", d["updated"])
    lines += _some("-", d["removed"])
    for name in d["skipped"]:
        lines.append(f"  ! {name}: a profile ssocred does not manage has this name; left alone")
    verb = "would change" if d["dry_run"] else "changed"
    summary = (f"{d['profiles']} profiles for {d['accounts']} accounts of SSO session '{d['session']}': "
               f"{len(d['added'])} added, {len(d['renamed'])} renamed, {len(d['updated'])} updated, "
               f"{len(d['removed'])} removed, {d['unchanged']} unchanged.")
    if not d["changed"]:
        summary += f" {d['config']} is up to date."
    elif not d["dry_run"]:
        summary += f" Wrote {d['config']}."
    else:
        summary += f" ({verb}; nothing written)"
    lines.append(summary)
    return "\n".join(lines)


def _some(mark: str, names: list[str], most: int = 25) -> list[str]:
    """One line per name, at most ``most`` of them (``--json`` lists them all)."""
    lines = [f"  {mark} {name}" for name in names[:most]]
    if len(names) > most:
        lines.append(f"  {mark} ... and {len(names) - most} more (--json lists them all)")
    return lines


def text_configure(d: dict[str, Any]) -> str:
    """What configure wrote and how to use it."""
    lines = [f"SSO session '{d['session']}' ({d['start_url']}, {d['sso_region']}) is in {d['config']}."]
    if d.get("populate"):
        lines.append(text_populate(d["populate"]))
        lines.append("Use any of them, e.g.: aws sts get-caller-identity --profile NAME")
    elif d.get("profile"):
        lines.append(f"Profile '{d['profile']}': account {d['account_id']}, role {d['role_name']}.")
        lines.append(f"Try it: ssocred whoami --profile {d['profile']}   (or: aws s3 ls --profile {d['profile']})")
    return "\n".join(lines)


def text_whoami(d: dict[str, Any]) -> str:
    """Account, ARN and user id."""
    who = f"profile '{d['profile']}'" if d["profile"] else "the default credentials"
    source = f" (credentials from {d['credential_source']})" if d.get("credential_source") else ""
    return "\n".join([
        f"Account: {d['account']}",
        f"ARN:     {d['arn']}",
        f"UserId:  {d['user_id']}",
        f"as {who}{source}",
    ])
