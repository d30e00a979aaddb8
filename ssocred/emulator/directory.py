"""The accounts, roles and user the portal serves: generated, or loaded from a JSON file.

File format (``--directory FILE``)::

    {
      "user": "alice@example.com",
      "accounts": [
        {"accountId": "111122223333", "accountName": "Development",
         "emailAddress": "dev@example.com", "roles": ["AdministratorAccess", "ReadOnlyAccess"]},
        {"accountName": "Production", "roles": ["ReadOnlyAccess"]}
      ]
    }

``user`` (optional, default ``emulator-user``) is the role session name STS reports. In each
account only ``accountName`` and ``roles`` are required; a missing ``accountId`` (12 digits) is
generated and a missing ``emailAddress`` is derived from the name.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_USER = "emulator-user"
FORMAT_HELP = """\
Directory file (--directory FILE), JSON:
  {
    "user": "alice@example.com",
    "accounts": [
      {"accountId": "111122223333", "accountName": "Development",
       "emailAddress": "dev@example.com", "roles": ["AdministratorAccess", "ReadOnlyAccess"]},
      {"accountName": "Production", "roles": ["ReadOnlyAccess"]}
    ]
  }
"user" (optional, default emulator-user) is the role session name STS reports. Per account only
"accountName" and "roles" are required; a missing "accountId" (12 digits) is generated and a
missing "emailAddress" is derived from the name.
"""
_ROLE_NAMES = ("AdministratorAccess", "ReadOnlyAccess", "PowerUserAccess", "ViewOnlyAccess", "Billing")
_ACCOUNT_ID = re.compile(r"^\d{12}$")
_ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")


@dataclass(frozen=True)
class Account:
    """One AWS account the user is assigned to, with the roles (permission sets) it offers."""

    account_id: str
    name: str
    email: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class Directory:
    """The signed-in user's view of Identity Center: their name and their account assignments."""

    accounts: tuple[Account, ...]
    user: str = DEFAULT_USER

    def account(self, account_id: str) -> Account | None:
        """The assigned account with this id, or None."""
        return next((a for a in self.accounts if a.account_id == account_id), None)


def seeded(purpose: str, seed: int | None) -> random.Random:
    """A generator for non-secret ids and fault draws, repeatable when ``seed`` is given."""
    # Not for secrets: tokens, keys and codes come from the secrets module.
    return random.Random(f"{purpose}:{seed}") if seed is not None else random.Random()  # noqa: S311


def generate(accounts: int, roles: int, rng: random.Random) -> Directory:
    """A directory of ``accounts`` accounts with ``roles`` roles each."""
    role_names = tuple(_ROLE_NAMES[i] if i < len(_ROLE_NAMES) else f"Role{i + 1}" for i in range(roles))
    made: list[Account] = []
    ids: set[str] = set()
    for index in range(1, accounts + 1):
        account_id = _new_account_id(rng, ids)
        made.append(Account(account_id, f"account-{index}", f"account-{index}@example.com", role_names))
    return Directory(tuple(made))


def load(path: str | Path) -> Directory:
    """Read a directory file; ValueError explains what is wrong with it."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read directory file {path}: {exc}") from exc
    return parse(data, seeded("file", 0))


def parse(data: Any, rng: random.Random) -> Directory:
    """Build a directory from the parsed JSON of a directory file."""
    if not isinstance(data, dict) or not isinstance(data.get("accounts"), list):
        raise ValueError('directory must be a JSON object with an "accounts" list')
    user = data.get("user", DEFAULT_USER)
    if not isinstance(user, str) or not _ROLE_NAME.match(user):
        raise ValueError('"user" must be a non-empty name of letters, digits and +=,.@_-')
    ids = {a["accountId"] for a in data["accounts"] if isinstance(a, dict) and isinstance(a.get("accountId"), str)}
    seen: set[str] = set()
    accounts = []
    for position, item in enumerate(data["accounts"]):
        account = _account(item, position, rng, ids)
        if account.account_id in seen:
            raise ValueError(f"accounts[{position}]: duplicate accountId {account.account_id}")
        seen.add(account.account_id)
        accounts.append(account)
    return Directory(tuple(accounts), user)


def _account(item: Any, position: int, rng: random.Random, ids: set[str]) -> Account:
    where = f"accounts[{position}]"
    if not isinstance(item, dict):
        raise ValueError(f"{where} must be an object")
    name = item.get("accountName")
    if not isinstance(name, str) or not name:
        raise ValueError(f'{where}: "accountName" must be a non-empty string')
    account_id = item.get("accountId") or _new_account_id(rng, ids)
    if not isinstance(account_id, str) or not _ACCOUNT_ID.match(account_id):
        raise ValueError(f'{where}: "accountId" must be a string of 12 digits')
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "account"
    email = item.get("emailAddress", f"{slug}@example.com")
    if not isinstance(email, str) or not 1 <= len(email) <= 254:
        raise ValueError(f'{where}: "emailAddress" must be a string of 1 to 254 characters')
    roles = item.get("roles")
    if not isinstance(roles, list) or not all(isinstance(r, str) and _ROLE_NAME.match(r) for r in roles):
        raise ValueError(f'{where}: "roles" must be a list of role names')
    if len(set(roles)) != len(roles):
        raise ValueError(f"{where}: duplicate role name")
    return Account(account_id, name, email, tuple(roles))


def _new_account_id(rng: random.Random, taken: set[str]) -> str:
    while True:
        candidate = str(rng.randrange(10**11, 10**12))
        if candidate not in taken:
            taken.add(candidate)
            return candidate
