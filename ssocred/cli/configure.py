"""``ssocred configure``: the interactive set-up of an SSO session and a profile, like ``aws configure sso``.

Questions go to stderr and answers come from stdin; every question has a flag, and with
``--no-input`` a missing answer is an error naming that flag.
Example: ``ssocred configure --start-url URL --sso-region us-east-1 --session-name corp --all --no-input``
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit

from ssocred.cli.render import Report
from ssocred.errors import AccessDenied, ConfigError, UsageError
from ssocred.model.naming import name_problem as check_name

if TYPE_CHECKING:
    from ssocred.usecases.accounts import AccountRoles

_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
_OUTPUTS = ("json", "yaml", "yaml-stream", "text", "table")
Check = Callable[[str], str | None]


class Asker:
    """Asks one question at a time on ``out``; ``Asker(no_input=True).ask(...)`` only takes defaults."""

    def __init__(self, no_input: bool, out: TextIO | None = None, inp: TextIO | None = None) -> None:
        self.no_input = no_input
        self.out = out if out is not None else sys.stderr
        self.inp = inp if inp is not None else sys.stdin

    def say(self, text: str) -> None:
        """Print a line of the conversation."""
        print(text, file=self.out, flush=True)

    def ask(self, question: str, flag: str, *, default: str | None = None, check: Check | None = None) -> str:
        """The answer to ``question`` (``default`` on an empty line); re-asks while ``check`` objects."""
        if self.no_input:
            if default is not None:
                return default
            raise UsageError(f"'{question}' needs an answer and --no-input was given", fix=f"pass {flag}")
        while True:
            self.out.write(f"{question} [{default}]: " if default else f"{question}: ")
            self.out.flush()
            line = self.inp.readline()
            if not line:
                raise UsageError(f"no answer for '{question}' (input ended)", fix=f"pass {flag}")
            answer = line.strip() or default
            if not answer:
                continue
            problem = check(answer) if check else None
            if problem is None:
                return answer
            self.say(f"  {problem}")


def check_start_url(url: str) -> str | None:
    """None when ``url`` looks like an access portal URL, else what is wrong with it."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.netloc:
        return "the start URL is an https:// address, e.g. https://d-1234567890.awsapps.com/start"
    return None


def check_region(region: str) -> str | None:
    """None for a region name like ``eu-west-1``, else a hint."""
    return None if _REGION.match(region) else f"'{region}' is not a region name (e.g. us-east-1, eu-west-1)"


def check_scopes(scopes: str) -> str | None:
    """None for a non-empty comma-separated scope list."""
    from ssocred.model.config import parse_scopes

    return None if parse_scopes(scopes) else "give at least one scope, e.g. sso:account:access"


def check_output(fmt: str) -> str | None:
    """None for an AWS CLI output format."""
    return None if fmt in _OUTPUTS else f"one of: {', '.join(_OUTPUTS)}"


def _fail(check: Check, value: str, flag: str) -> str:
    problem = check(value)
    if problem:
        raise UsageError(f"{flag} {value!r}: {problem}", fix=f"correct {flag}")
    return value


def _given(args: argparse.Namespace, name: str, flag: str, check: Check) -> str | None:
    value: str | None = getattr(args, name)
    return None if value is None else _fail(check, value, flag)


def _default_session_name(start_url: str) -> str | None:
    host = urlsplit(start_url).hostname or ""
    label = host.split(".")[0]
    return label if check_name(label) is None and label else None


def run(args: argparse.Namespace) -> Report:
    """The whole conversation; returns what was written."""
    from ssocred.adapters import config_file
    from ssocred.adapters.paths import display_path
    from ssocred.model.config import parse_scopes

    asker = Asker(args.no_input)
    start_url = _given(args, "start_url", "--start-url", check_start_url) or asker.ask(
        "SSO start URL", "--start-url", check=check_start_url)
    sso_region = _given(args, "sso_region", "--sso-region", check_region) or asker.ask(
        "SSO region", "--sso-region", check=check_region)
    name = _given(args, "session_name", "--session-name", check_name) or asker.ask(
        "SSO session name", "--session-name", default=_default_session_name(start_url), check=check_name)
    scopes_text = _given(args, "scopes", "--scopes", check_scopes) or asker.ask(
        "SSO registration scopes", "--scopes", default="sso:account:access", check=check_scopes)
    scopes = parse_scopes(scopes_text)
    session_changed = config_file.write_sso_session(name, start_url, sso_region, scopes)
    shown = display_path(config_file.config_path())
    asker.say(f"{'Wrote' if session_changed else 'Kept'} [sso-session {name}] in {shown}.")

    logged_in = _login(args, name, asker)
    from ssocred.adapters.store import Store
    from ssocred.usecases.accounts import walk

    result = walk(Store(), name)
    if not result.accounts:
        raise AccessDenied("no AWS account is assigned to you in this IAM Identity Center",
                           fix="ask an administrator for an account assignment")
    data: dict[str, Any] = {"session": name, "start_url": start_url, "sso_region": sso_region,
                            "scopes": list(scopes), "session_written": session_changed, "login": logged_in,
                            "config": shown, "profile": None, "populate": None}
    chosen = None if args.all else _account(args, asker, result.accounts)
    region = _given(args, "region", "--region", check_region) or asker.ask(
        "Default client region", "--region", default=sso_region, check=check_region)
    output = _given(args, "output", "--output", check_output) or asker.ask(
        "Default output format", "--output", default="json", check=check_output)
    if chosen is None:
        from ssocred.model.naming import DEFAULT_TEMPLATE
        from ssocred.usecases.profiles import write_profiles

        data["populate"] = write_profiles(name, result, template=DEFAULT_TEMPLATE, region=region, output=output,
                                          prune=False, dry_run=False)
        return Report("configure", data)
    account, role = chosen, _role(args, asker, chosen)
    data["profile"] = _write_profile(args, asker, name, account, role, region, output)
    data["account_id"], data["role_name"] = account.account.account_id, role
    return Report("configure", data)


def _login(args: argparse.Namespace, name: str, asker: Asker) -> str:
    from ssocred.adapters.store import Store
    from ssocred.cli.login import login
    from ssocred.model.sso import token_usable

    token = Store().load_session(name)
    if token is not None and token_usable(token, time.time()):
        asker.say(f"Already logged in to '{name}'.")
        return "reused"
    login_args = argparse.Namespace(profile=None, sso_session=name, use_device_code=args.use_device_code,
                                    no_browser=args.no_browser, timeout=600.0, export_aws_cli_cache=False,
                                    json=True)
    report = login(login_args)
    asker.say(f"Logged in to '{name}' ({report.data['flow']}).")
    return str(report.data["flow"])


def _account(args: argparse.Namespace, asker: Asker, accounts: tuple[AccountRoles, ...]) -> AccountRoles | None:
    """The chosen account, or None for "all" (a profile per account and role)."""
    by_id = {a.account.account_id: a for a in accounts}
    if args.account_id:
        if args.account_id not in by_id:
            raise AccessDenied(f"account {args.account_id} is not among your {len(accounts)} accounts",
                               fix="run: ssocred accounts (an admin can check: ssocred discover)")
        return by_id[args.account_id]
    if len(accounts) == 1 and args.no_input:
        return accounts[0]
    asker.say(f"There {'is 1 AWS account' if len(accounts) == 1 else f'are {len(accounts)} AWS accounts'} "
              "available to you:")
    for i, a in enumerate(accounts, 1):
        asker.say(f"  {i:>3}) {a.account.name} ({a.account.account_id}) {a.account.email}")

    def check(answer: str) -> str | None:
        if answer == "all" or answer in by_id or (answer.isdigit() and 1 <= int(answer) <= len(accounts)):
            return None
        return f"a number from 1 to {len(accounts)}, an account id, or 'all'"

    answer = asker.ask("Account (number, id, or 'all' for a profile per account and role)", "--account-id or --all",
                       default="1" if len(accounts) == 1 else None, check=check)
    if answer == "all":
        return None
    return by_id[answer] if answer in by_id else accounts[int(answer) - 1]


def _role(args: argparse.Namespace, asker: Asker, account: AccountRoles) -> str:
    roles = list(account.roles)
    if not roles:
        raise AccessDenied(f"you have no role in account {account.account.account_id}",
                           fix="ask an administrator to assign a permission set (they can check: ssocred discover)")
    if args.role_name:
        if args.role_name not in roles:
            raise AccessDenied(f"role {args.role_name} is not assigned to you in account "
                               f"{account.account.account_id} (you have: {', '.join(roles)})",
                               fix="pick one of those, or ask an admin to check: ssocred discover")
        return str(args.role_name)
    if len(roles) == 1:
        asker.say(f"Using the only role in {account.account.name}: {roles[0]}")
        return roles[0]
    for i, r in enumerate(roles, 1):
        asker.say(f"  {i:>3}) {r}")

    def check(answer: str) -> str | None:
        ok = answer in roles or (answer.isdigit() and 1 <= int(answer) <= len(roles))
        return None if ok else f"a number from 1 to {len(roles)} or a role name"

    answer = asker.ask("Role (number or name)", "--role-name", check=check)
    return answer if answer in roles else roles[int(answer) - 1]


def _write_profile(args: argparse.Namespace, asker: Asker, session: str, account: AccountRoles, role: str,
                   region: str, output: str) -> str:
    from ssocred.adapters import config_file
    from ssocred.model.naming import DEFAULT_TEMPLATE, Target, profile_name, profile_values
    from ssocred.usecases.profiles import command_word

    target = Target(session, account.account.account_id, account.account.name, role, account.account.email)
    name = _given(args, "profile_name", "--profile-name", check_name) or asker.ask(
        "Profile name", "--profile-name", default=profile_name(DEFAULT_TEMPLATE, target, region), check=check_name)
    existing = config_file.load().profiles.get(name)
    if existing is not None and (existing.sso_account_id or existing.sso_role_name):
        raise ConfigError(
            f"profile '{name}' has sso_account_id/sso_role_name, which would route around credential_process",
            fix="choose another --profile-name, or remove those keys from it first",
        )
    values = dict(profile_values(command_word(), target, region=region, output=output))
    # A profile the user named is theirs: it is not marked as managed, so populate --prune leaves it alone.
    del values[config_file.MANAGED_KEY]
    config_file.edit(lambda text, shown: (config_file.profile_text(text, shown, name, values), None))
    return name
