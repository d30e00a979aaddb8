"""A federated sign-in URL for the AWS console with a role's credentials.

Example: ``console_url(store, ("corp", "111122223333", "Admin"), "eu-west-1")`` starts
``https://signin.aws.amazon.com/federation?Action=login``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ssocred.adapters import signin
from ssocred.usecases.credentials import role_credentials

if TYPE_CHECKING:
    from ssocred.adapters.store import Store
    from ssocred.usecases.credentials import Role


def console_url(store: Store, role: Role, region: str, destination: str | None = None) -> str:
    """The login URL for ``role``, opening ``destination`` (default: the console home of ``region``).

    It carries a sign-in token valid for 15 minutes: show it to its user only.
    """
    creds = role_credentials(store, *role)
    token = signin.signin_token(creds, region)
    return signin.login_url(token, region, destination or signin.console_home(region))
