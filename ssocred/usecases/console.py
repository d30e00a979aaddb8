"""A federated sign-in URL for the AWS console with a role's credentials.

Example: ``console_url(store, SsoTarget("corp", "111122223333", "Admin"), "eu-west-1")[0]`` starts
``https://signin.aws.amazon.com/federation?Action=login``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ssocred.adapters import signin
from ssocred.usecases.chain import credentials_for

if TYPE_CHECKING:
    from ssocred.adapters.store import Store
    from ssocred.model.chain import Target
    from ssocred.model.sso import RoleCredentials


def console_url(store: Store, target: Target, region: str, destination: str | None = None
                ) -> tuple[str, RoleCredentials]:
    """The login URL for ``target`` (an SSO role or a chained one), opening ``destination``, and its credentials.

    ``destination`` defaults to the console home of ``region``. The URL carries a sign-in token
    valid for 15 minutes: show it to its user only.
    """
    creds = credentials_for(store, target)
    token = signin.signin_token(creds, region)
    return signin.login_url(token, region, destination or signin.console_home(region)), creds
