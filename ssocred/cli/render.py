"""One place that turns command results into text or JSON: every text layout of the CLI lives here.

Example: ``render(Report("status", {"sessions": []}), as_json=True, out=sys.stdout)``
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from ssocred.cli.render_forward import forward_lines, text_forward, text_forward_list, text_forward_remove
from ssocred.model.config_syntax import clean
from ssocred.model.timefmt import duration

if TYPE_CHECKING:
    from ssocred.model.sso import RoleCredentials


@dataclass(frozen=True)
class Report:
    """A command's result: a kind (which text layout) and JSON-ready data with no secrets."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)


def columns(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns, header first: ``columns(["ID", "NAME"], [["1", "a"]]) == ["ID  NAME", "1   a"]``."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    return ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in (header, *rows)]


def _login(d: dict[str, Any]) -> str:
    how = "reused the login another process just finished" if d.get("reused") else f"via {d['flow']}"
    lines = [f"Logged in to SSO session '{d['session']}' ({how})."]
    lines.append(f"  token expires {d['expires_at']} (in {duration(d['expires_in'])}); "
                 + ("refreshable" if d["refreshable"] else "NOT refreshable: log in again when it expires"))
    lines.append(f"  stored in: {d['store']}")
    if d.get("exported"):
        lines.append(f"  exported for the AWS CLI: {d['exported']}")
    if d.get("export_note"):
        lines.append(f"  note: {d['export_note']}")
    return "\n".join(lines)


def _logout(d: dict[str, Any]) -> str:
    if not d["sessions"]:
        return "Nothing to log out."
    lines = []
    for s in d["sessions"]:
        if not s.get("was_logged_in", True):
            lines.append(f"'{s['session']}' was not logged in; nothing to remove.")
            continue
        note = f" (portal logout failed: {s['portal_error']})" if s.get("portal_error") else ""
        lines.append(f"Logged out of '{s['session']}'{note}.")
        if s.get("exports_removed"):
            lines.append("  removed from the credentials file: " + ", ".join(f"[{n}]" for n in s["exports_removed"]))
    return "\n".join(lines)


def _started_by(daemon: dict[str, Any]) -> str:
    """``, autostarted; exits after 8h without requests``, ``, started by systemd`` or nothing."""
    by, idle = daemon.get("started_by"), daemon.get("idle_exit_seconds")
    leaves = f"; exits after {duration(idle)} without requests" if isinstance(idle, (int, float)) else ""
    if by == "autostart":
        return f", autostarted{leaves}"
    return f", started {by}{leaves}" if by == "by hand" else f", started by {by}{leaves}" if by else leaves


def _daemon(daemon: dict[str, Any] | None) -> list[str]:
    if not daemon:
        return ["daemon: not running (start it with: ssocred service install, or ssocred daemon)"]
    lines = [f"daemon: running (pid {daemon['pid']}, since {daemon['started_at']}{_started_by(daemon)})"]
    if daemon.get("refreshes"):
        commit = daemon.get("last_commit_ms")
        stored = f"; the last one was stored {commit:.0f} ms after the answer" if commit is not None else ""
        lines.append(f"  token refreshes: {daemon['refreshes']}{stored}")
    for name, s in sorted(daemon.get("sessions", {}).items()):
        error = f", last error: {s['last_error']}" if s.get("last_error") else ""
        lines.append(f"  {name}: last refresh {s.get('last_refresh') or 'none yet'}, "
                     f"next {s.get('next_refresh') or 'not scheduled'}{error}")
    prefetch = daemon.get("prefetch", [])
    if prefetch:
        lines.append(f"  pre-fetched roles: {len(prefetch)}")
        lines.extend(f"    {p['session']} {p['account_id']} {p['role_name']}: {_prefetch_state(p)}" for p in prefetch)
    return lines


def _prefetch_state(p: dict[str, Any]) -> str:
    if not p["next_fetch"]:
        return f"not pre-fetched: {p['last_error']}" if p.get("last_error") else "not scheduled"
    error = f", last error: {p['last_error']}" if p.get("last_error") else ""
    return f"next fetch {p['next_fetch']}{error}"


def _store(store: dict[str, Any] | None) -> list[str]:
    """The memory store's line: where the secrets are, or what a stopped memory-store daemon held."""
    from ssocred.model.sso import login_command

    if store and store["kind"] == "memory":
        return [f"store: the memory of the ssocred daemon (pid {store.get('pid') or '?'}) only, nothing on disk; "
                "when the daemon restarts, every session needs a new login"]
    lost = store.get("lost_sessions") if store else None
    return [f"store: the memory-store daemon that held {', '.join(lost)} has stopped; start it again (ssocred daemon "
            f"--store memory) and run: {'; '.join(login_command(n) for n in lost)}"] if lost else []


def _status(d: dict[str, Any]) -> str:
    from ssocred.model.sso import login_command

    # Where a daemon is forwarded, none is needed here: its line says so instead of "not running".
    forwarded_only = d.get("forwarded_socket") and not d.get("daemon")
    daemon = [] if forwarded_only else _daemon(d.get("daemon")) + _store(d.get("store"))
    if not d["sessions"]:
        return "\n".join(["No SSO sessions configured or stored; add an [sso-session] to ~/.aws/config, "
                          "then run: ssocred login", *forward_lines(d), *daemon])
    lines = []
    now = time.time()
    for s in d["sessions"]:
        if not s["logged_in"]:
            gone = " (the memory-store daemon that held it has stopped)" if s.get("lost_with_daemon") else ""
            lines.append(f"{s['session']}: not logged in{gone}")
            continue
        left = s["expires_epoch"] - now
        state = "expired" if left <= 0 else f"valid for {duration(left)}"
        refresh = "refreshable" if s["refreshable"] else "not refreshable"
        if s.get("rejected_at"):
            lines.append(f"{s['session']}: rejected: the service refused its token at {s['rejected_at']} (revoked, "
                         f"or logged out elsewhere); run: {login_command(s['session'])}")
        else:
            lines.append(f"{s['session']}: logged in, token {state} (until {s['expires_at']}), {refresh}")
        if s.get("registration_expires_at"):
            lines.append(f"  client registration until {s['registration_expires_at']}")
        if s.get("refresh_started_at"):
            lines.append(f"  a refresh started at {s['refresh_started_at']} has not stored its result (still "
                         "running, or interrupted; ssocred doctor tells which)")
        for c in s["credentials"]:
            c_left = c["expiration_epoch"] - now
            what = " (assumed through a chain)" if c.get("chained") else ""
            lines.append(f"  {c['account_id']} {c['role_name']}{what}: credentials valid for {duration(c_left)}")
    if d.get("exports"):
        lines += [f"exported to {d['exports_file']}:", *_exports(d["exports"])]
    return "\n".join(lines + forward_lines(d) + daemon)


def _imported(d: dict[str, Any]) -> str:
    return (f"Imported the AWS CLI token for '{d['session']}' (expires {d['expires_at']}, "
            + ("refreshable" if d["refreshable"] else "not refreshable") + f") into {d['store']}.")



#: ``ssocred env --format``: ssocred's own (``sh``, ``fish``, ``json``: with the profile's region), then
#: the AWS CLI v2 ``configure export-credentials`` formats, byte for byte (credentials only).
ENV_FORMATS = ("sh", "fish", "json", "env", "env-no-export", "powershell", "windows-cmd", "process")
#: The AWS CLI's per-line formats: ``export-credentials --format env`` prints ``export AWS_ACCESS_KEY_ID=...``.
_AWS_CLI_LINES = {"env": "export {}={}", "env-no-export": "{}={}", "powershell": '$Env:{}="{}"',
                  "windows-cmd": "set {}={}"}


def env_text(fmt: str, values: dict[str, str], creds: RoleCredentials) -> str:
    """``ssocred env`` output: ``env_text("sh", credential_env(c, None), c)`` is ``export AWS_ACCESS_KEY_ID=...``.

    ``values`` are ssocred's variables (region included); the AWS CLI formats show ``creds`` as the
    AWS CLI shows credentials it resolved, its expiry written by ``datetime.isoformat()``.
    """
    import shlex

    if fmt == "json":
        return json.dumps(values, indent=2) + "\n"
    if fmt == "sh":
        return "".join(f"export {key}={shlex.quote(value)}\n" for key, value in values.items())
    if fmt == "fish":
        return "".join(f"set -gx {key} {shlex.quote(value)};\n" for key, value in values.items())
    expiry = datetime.datetime.fromtimestamp(int(creds.expiration), tz=datetime.timezone.utc).isoformat()
    if fmt == "process":
        shown = {"Version": 1, "AccessKeyId": creds.access_key_id, "SecretAccessKey": creds.secret_access_key,
                 "SessionToken": creds.session_token, "Expiration": expiry}
        return json.dumps(shown, indent=2, separators=(",", ": ")) + "\n"
    line = _AWS_CLI_LINES[fmt]
    pairs = (("AWS_ACCESS_KEY_ID", creds.access_key_id), ("AWS_SECRET_ACCESS_KEY", creds.secret_access_key),
             ("AWS_SESSION_TOKEN", creds.session_token), ("AWS_CREDENTIAL_EXPIRATION", expiry))
    return "".join(line.format(key, value) + "\n" for key, value in pairs)


def text_container(d: dict[str, Any]) -> str:
    """``ssocred container``: ``KEY=VALUE`` a line, as ``docker run --env-file`` reads them (no quotes)."""
    return "\n".join(f"{key}={value}" for key, value in d.items())


def text_container_revoke(d: dict[str, Any]) -> str:
    """``ssocred container --revoke``: ``revoked the container token of Dev in 111122223333``."""
    what = f"the container token of {d['role_name']} in {d['account_id']}"
    return f"revoked {what}" if d["revoked"] else f"no {what} was handed out (nothing to revoke)"


def render(result: Report, *, as_json: bool, out: TextIO) -> None:
    """Print ``result`` as indented JSON or as its text layout."""
    if as_json:
        print(json.dumps(result.data, indent=2, sort_keys=True), file=out)
        return
    text = _TEXT.get(result.kind)
    print(text(result.data) if text else json.dumps(result.data, indent=2), file=out)


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
    if d.get("keep_in_sync"):
        lines.append(f"The daemon keeps these profiles in sync with session '{d['session']}' (ssocred_sync_profiles "
                     "in its [sso-session]; remove that key to stop).")
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


def text_doctor(data: dict[str, Any]) -> str:
    """The text layout: ``PASS  token        logged in; token valid for 58m 3s``, then ``      fix: ...``."""
    parts = [f"profile '{clean(data['profile'])}'"] if data.get("profile") else []
    if data.get("session"):
        session = clean(data["session"])
        # A legacy profile's session is keyed by its start URL, not by a section name.
        parts.append(f"start URL {session}" if "://" in session else f"sso-session '{session}'")
    lines = ["ssocred doctor: " + (", ".join(parts) or "no profile or sso-session selected")]
    width = max((len(c["id"]) for c in data["checks"]), default=0) + 1
    for check in data["checks"]:
        lines.append(f"{check['status'].upper():<6}{check['id']:<{width}}{check['summary']}")
        if check.get("fix"):
            lines.append(f"{'':<6}fix: {check['fix']}")
    statuses = [c["status"] for c in data["checks"]]
    warned, skipped = statuses.count("warn"), statuses.count("skip")
    notes = ", ".join(f"{n} {word}" for n, word in ((warned, "warned"), (skipped, "skipped")) if n)
    if data["ok"]:
        lines.append("no check failed" + (f" ({notes})" if notes else ""))
    else:
        failed = statuses.count("fail")
        lines.append(f"{failed} check{'s' if failed != 1 else ''} failed; exit code {data['exit_code']}")
    return "\n".join(lines)


def _exports(items: list[dict[str, Any]]) -> list[str]:
    return [f"  [{e['name']}] {e['session']} {e['account_id']} {e['role_name']}: "
            + ("expired" if e["expired"] else f"until {e['expires']}") for e in items]


def _credentials_file(d: dict[str, Any]) -> str:
    if d["action"] == "export":
        lines = [f"Wrote [{d['name']}] to {d['file']}: credentials of {d['role_name']} in {d['account_id']} "
                 f"(session {d['session']}), until {d['expires']}; the daemon keeps them fresh while it runs."]
        if d["shadows_profile"]:
            lines.append(f"note: SDKs now read [{d['name']}] from {d['file']} before the credential_process of "
                         f"profile {d['name']}; without a running daemon those keys expire at {d['expires']}.")
        return "\n".join(lines)
    if d["action"] == "remove":
        return f"Removed [{d['name']}]." if d["removed"] else f"No exported section [{d['name']}]; nothing removed."
    if not d["exports"]:
        return f"Nothing is exported to {d['file']}."
    return "\n".join([f"exported to {d['file']}:", *_exports(d["exports"])])


_TEXT: dict[str, Callable[[dict[str, Any]], str]] = {
    "credentials-file": _credentials_file,
    "login": _login,
    "logout": _logout,
    "status": _status,
    "import": _imported,
    "accounts": text_accounts,
    "populate": text_populate,
    "configure": text_configure,
    "whoami": text_whoami,
    "discover": text_discover,
    "doctor": text_doctor,
    "container": text_container,
    "container-revoke": text_container_revoke,
    "forward": text_forward,
    "forward-list": text_forward_list,
    "forward-remove": text_forward_remove,
}
