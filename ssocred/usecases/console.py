"""A federated sign-in URL for the AWS console with a role's credentials.

Example: ``console_url(credentials_for(store, SsoTarget("corp", "111122223333", "Admin")), "eu-west-1")`` starts
``https://signin.aws.amazon.com/federation?Action=login``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ssocred.adapters import signin

if TYPE_CHECKING:
    from ssocred.model.sso import RoleCredentials


def console_url(creds: RoleCredentials, region: str, destination: str | None = None) -> str:
    """The login URL for a role's credentials (an SSO role's or a chained one's), opening ``destination``.

    ``destination`` defaults to the console home of ``region``. The URL carries a sign-in token
    valid for 15 minutes: show it to its user only.
    """
    token = signin.signin_token(creds, region)
    return signin.login_url(token, region, destination or signin.console_home(region))
