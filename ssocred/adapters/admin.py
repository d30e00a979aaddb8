"""IAM Identity Center administration reads through boto3: sso-admin, organizations, identitystore.

Signed with a profile's own credentials (the management account or a delegated administrator).
Example: ``Admin.open("mgmt").instances()[0].portal_url``
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ssocred.adapters.aws import error_code, is_network_error, network_error
from ssocred.adapters.server_text import service_message
from ssocred.errors import AccessDenied, ConfigError, LoginRequired, ServiceError, SsocredError
from ssocred.model.config_syntax import clean

#: Error codes that mean "these credentials may not do this" (the last one is the STS/IAM spelling).
ACCESS_DENIED_CODES = frozenset({"AccessDeniedException", "AccessDenied", "UnauthorizedOperation"})
#: Error codes that mean the credentials themselves were refused.
REJECTED_CODES = frozenset(
    {"UnrecognizedClientException", "InvalidClientTokenId", "InvalidSignatureException", "SignatureDoesNotMatch"}
)
EXPIRED_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})
DENIED_FIX = "use the management account or a delegated administrator"


@dataclass(frozen=True)
class Instance:
    """An IAM Identity Center instance: ``Instance("arn:aws:sso:::instance/ssoins-1", "d-1234567890", "us-east-1")``."""

    arn: str
    identity_store_id: str
    region: str
    name: str | None = None
    owner_account_id: str | None = None
    status: str | None = None

    @property
    def portal_url(self) -> str:
        """The AWS access portal: ``"https://d-1234567890.awsapps.com/start"``."""
        return f"https://{self.identity_store_id}.awsapps.com/start"


@dataclass(frozen=True)
class Account:
    """An AWS account: ``Account("111122223333", "dev", "dev@example.com", "ACTIVE")``; "" when unknown."""

    id: str
    name: str = ""
    email: str = ""
    status: str = ""


@dataclass(frozen=True)
class PermissionSet:
    """A permission set: ``PermissionSet("arn:aws:sso:::permissionSet/ssoins-1/ps-1", "ReadOnly", "PT8H", "")``."""

    arn: str
    name: str
    session_duration: str
    description: str


@dataclass(frozen=True)
class Assignment:
    """Who has a permission set in an account: ``Assignment("111122223333", ps_arn, "GROUP", "9067...")``."""

    account_id: str
    permission_set_arn: str
    principal_type: str
    principal_id: str


@dataclass(frozen=True)
class Principal:
    """A user or group by name: ``Principal("alice@example.com", "Alice Jones")``; ``found`` False if unreadable."""

    name: str
    display_name: str = ""
    found: bool = True
    problem: str = ""


class Unavailable(Exception):
    """A read that has a fallback failed, e.g. Organizations is not in use; ``reason`` says why in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _who(profile: str | None) -> str:
    return f"profile '{clean(profile)}'" if profile else "the default AWS credentials"


def _section(profile: str | None) -> str:
    return f"[profile {clean(profile)}]" if profile and profile != "default" else "[default]"


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return status if isinstance(status, int) else None
    return None


def is_denied(exc: BaseException) -> bool:
    """Whether a botocore error means "not allowed": ``AccessDeniedException``, ``AccessDenied`` or a bare HTTP 403."""
    code = error_code(exc)
    # A 403 whose body is not a service error carries only the status as its code.
    return code in ACCESS_DENIED_CODES or (code == "403" and _status(exc) == 403)


def translate(exc: BaseException, what: str, profile: str | None, endpoint: str) -> SsocredError:
    """A botocore failure of ``what`` (e.g. ``"sso-admin ListInstances"``) as a one-line error, never with secrets."""
    from botocore import exceptions as bx

    who = _who(profile)
    login_fix = f"aws sso login --profile {clean(profile)}" if profile else "aws sso login"
    if isinstance(exc, SsocredError):
        return exc
    if is_network_error(exc):
        return network_error(exc, endpoint)
    if isinstance(exc, bx.NoCredentialsError):
        return ConfigError(
            f"no AWS credentials for {who}",
            fix=f"add aws_access_key_id and aws_secret_access_key (or credential_process or SSO settings) "
            f"to {_section(profile)} in ~/.aws/config or ~/.aws/credentials",
        )
    if isinstance(exc, bx.PartialCredentialsError):
        return ConfigError(f"incomplete AWS credentials for {who} ({exc.kwargs.get('cred_var', 'a key')} is missing)",
                           fix=f"complete the credentials of {_section(profile)}")
    if isinstance(exc, (bx.SSOTokenLoadError, bx.UnauthorizedSSOTokenError, bx.TokenRetrievalError)):
        return LoginRequired(f"the SSO login behind {who} is missing or expired", fix=login_fix)
    if isinstance(exc, bx.CredentialRetrievalError):
        return ConfigError(f"the credentials of {who} could not be obtained ({exc.kwargs.get('provider', '?')})",
                           fix="run its credential_process by hand to see why")
    if isinstance(exc, bx.ClientError):
        code = error_code(exc) or "?"
        if is_denied(exc):
            return AccessDenied(
                f"these credentials ({who}) cannot read IAM Identity Center ({what}: access denied)", fix=DENIED_FIX
            )
        if code in REJECTED_CODES:
            return AccessDenied(f"AWS does not accept the credentials of {who} ({code})",
                                fix=f"check or renew the access keys of {_section(profile)}")
        if code in EXPIRED_CODES:
            return LoginRequired(f"the credentials of {who} have expired ({code})", fix=f"renew them ({login_fix})")
        return ServiceError(f"{what} failed: {code}: {clean(service_message(exc), 200)}")
    if isinstance(exc, bx.BotoCoreError):
        return ServiceError(f"{what} failed: {clean(str(exc), 200)}")
    raise exc


class Admin:
    """The three admin clients of one profile; thread-safe after construction.

    Example: ``admin = Admin.open("mgmt"); admin.permission_set_arns(admin.instances()[0].arn)``
    """

    def __init__(self, profile: str | None, region: str, clients: dict[str, Any]) -> None:
        self.profile = profile
        self.region = region
        self._clients = clients

    @classmethod
    def open(cls, profile: str | None, workers: int = 8) -> Admin:
        """``Admin.open("mgmt")``: clients for a profile (None: the default chain) in its region, which it must have."""
        import boto3.session
        import botocore.config
        from botocore import exceptions as bx

        try:
            session = boto3.session.Session(profile_name=profile)
            region = session.region_name
        except bx.ProfileNotFound:
            raise ConfigError(
                f"profile '{clean(profile or '')}' is not defined in ~/.aws/config or ~/.aws/credentials",
                fix=f"add a {_section(profile)} section with the management account's credentials and region, "
                "or choose another with --profile",
            ) from None
        except bx.BotoCoreError as exc:
            raise ConfigError(f"cannot read the AWS configuration: {clean(str(exc), 200)}",
                              fix="fix ~/.aws/config") from None
        if not region:
            raise ConfigError(
                f"{_who(profile)} has no region",
                fix=f"add region = <the IAM Identity Center region> to {_section(profile)}, or set AWS_REGION",
            )
        # Only the mode is fixed: max_attempts still comes from AWS_MAX_ATTEMPTS or the profile.
        cfg = botocore.config.Config(
            retries={"mode": "standard"},
            connect_timeout=10,
            read_timeout=30,
            max_pool_connections=workers + 2,
        )
        # A boto3 session is not thread-safe; its clients are, so all of them are made here, up front.
        clients = {
            name: session.client(name, region_name=region, config=cfg)
            for name in ("sso-admin", "organizations", "identitystore")
        }
        return cls(profile, region, clients)

    def _pages(self, service: str, op: str, key: str, **params: Any) -> Iterator[Any]:
        """Every item under ``key`` over all pages of ``op``; failures translated."""
        client = self._clients[service]
        paginator = client.get_paginator(op)
        try:
            for page in paginator.paginate(**params):
                yield from page.get(key, [])
        except Exception as exc:
            raise self._translate(exc, service, op) from None

    def _call(self, service: str, op: str, **params: Any) -> dict[str, Any]:
        client = self._clients[service]
        try:
            result: dict[str, Any] = getattr(client, op)(**params)
            return result
        except Exception as exc:
            raise self._translate(exc, service, op) from None

    def _translate(self, exc: BaseException, service: str, op: str) -> SsocredError:
        name = "".join(part.title() for part in op.split("_"))
        endpoint = str(self._clients[service].meta.endpoint_url)
        return translate(exc, f"{service} {name}", self.profile, endpoint)

    def instances(self) -> list[Instance]:
        """sso-admin ListInstances in the profile's region, all pages: ``admin.instances()[0].identity_store_id``."""
        return [
            Instance(
                arn=item["InstanceArn"],
                identity_store_id=item["IdentityStoreId"],
                region=self.region,
                name=item.get("Name") or None,
                owner_account_id=item.get("OwnerAccountId") or None,
                status=item.get("Status") or None,
            )
            for item in self._pages("sso-admin", "list_instances", "Instances")
        ]

    def accounts(self) -> list[Account]:
        """organizations ListAccounts, all pages (``admin.accounts()[0].name``); Unavailable when it cannot be read."""
        from botocore.exceptions import ClientError

        try:
            return [
                Account(item["Id"], item.get("Name", ""), item.get("Email", ""), item.get("Status", ""))
                for item in self._pages_raw("organizations", "list_accounts", "Accounts")
            ]
        except ClientError as exc:
            code = error_code(exc) or "?"
            if code == "AWSOrganizationsNotInUseException":
                raise Unavailable("AWS Organizations is not in use") from None
            if is_denied(exc):
                raise Unavailable("access to AWS Organizations is denied") from None
            raise Unavailable(f"AWS Organizations failed ({code})") from None
        except Exception as exc:
            raise self._translate(exc, "organizations", "list_accounts") from None

    def _pages_raw(self, service: str, op: str, key: str) -> Iterator[Any]:
        for page in self._clients[service].get_paginator(op).paginate():
            yield from page.get(key, [])

    def permission_set_arns(self, instance_arn: str) -> list[str]:
        """sso-admin ListPermissionSets, all pages: ``admin.permission_set_arns(instance.arn)``."""
        return [str(arn) for arn in self._pages("sso-admin", "list_permission_sets", "PermissionSets",
                                                InstanceArn=instance_arn)]

    def permission_set(self, instance_arn: str, arn: str) -> PermissionSet:
        """sso-admin DescribePermissionSet: ``admin.permission_set(instance.arn, arn).session_duration == "PT8H"``."""
        item = self._call("sso-admin", "describe_permission_set", InstanceArn=instance_arn,
                          PermissionSetArn=arn)["PermissionSet"]
        return PermissionSet(arn, item.get("Name") or arn.rsplit("/", 1)[-1], item.get("SessionDuration") or "",
                             item.get("Description") or "")

    def provisioned_accounts(self, instance_arn: str, permission_set_arn: str) -> list[str]:
        """The accounts a permission set is provisioned in (ListAccountsForProvisionedPermissionSet, all pages).

        Example: ``admin.provisioned_accounts(instance.arn, ps_arn) == ["111122223333"]``
        """
        return [str(a) for a in self._pages("sso-admin", "list_accounts_for_provisioned_permission_set",
                                            "AccountIds", InstanceArn=instance_arn,
                                            PermissionSetArn=permission_set_arn)]

    def assignments(self, instance_arn: str, account_id: str, permission_set_arn: str) -> list[Assignment]:
        """sso-admin ListAccountAssignments, all pages: ``admin.assignments(instance.arn, "111122223333", ps_arn)``."""
        return [
            Assignment(item.get("AccountId") or account_id, item.get("PermissionSetArn") or permission_set_arn,
                       item["PrincipalType"], item["PrincipalId"])
            for item in self._pages("sso-admin", "list_account_assignments", "AccountAssignments",
                                    InstanceArn=instance_arn, AccountId=account_id,
                                    PermissionSetArn=permission_set_arn)
        ]

    def principal(self, identity_store_id: str, principal_type: str, principal_id: str) -> Principal:
        """DescribeUser / DescribeGroup: ``admin.principal("d-1234567890", "USER", user_id).name``; id if unreadable."""
        from botocore.exceptions import ClientError

        client = self._clients["identitystore"]
        try:
            if principal_type == "USER":
                user = client.describe_user(IdentityStoreId=identity_store_id, UserId=principal_id)
                return Principal(user.get("UserName") or principal_id, user.get("DisplayName") or "")
            group = client.describe_group(IdentityStoreId=identity_store_id, GroupId=principal_id)
            return Principal(group.get("DisplayName") or principal_id)
        except ClientError as exc:
            problem = "access denied" if is_denied(exc) else (error_code(exc) or "error")
            return Principal(principal_id, found=False, problem=problem)
        except Exception as exc:
            if is_network_error(exc):
                return Principal(principal_id, found=False, problem=type(exc).__name__)
            raise self._translate(exc, "identitystore", f"describe_{principal_type.lower()}") from None

