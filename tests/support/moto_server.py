"""A moto server on 127.0.0.1 (a free port), reached over real HTTP, and the IAM Identity Center data tests need.

Example: ``server = start_moto_server(); org = build_org(server); server.stop()``
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

REGION = "us-east-1"
#: moto's account for requests signed with unknown keys (here: the management account).
MANAGEMENT_ACCOUNT = "123456789012"


class MotoServer:
    """A running ``ThreadedMotoServer``: ``server.client("sso-admin").list_instances()``."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        # Port 0: the kernel picks a free port, so parallel runs never collide.
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        self._clients: dict[tuple[str, str], Any] = {}

    def client(self, service: str, *, key: str = "testing", secret: str = "testing") -> Any:
        """A boto3 client for ``service`` signed with ``key``/``secret``, pointed at this server only."""
        import boto3.session
        import botocore.config

        # Making a client costs tens of milliseconds; building data needs hundreds of calls.
        cached = self._clients.get((service, key))
        if cached is not None:
            return cached
        made = self._clients[(service, key)] = boto3.session.Session().client(
            service,  # type: ignore[call-overload]
            region_name=REGION,
            endpoint_url=self.url,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            config=botocore.config.Config(retries={"mode": "standard", "max_attempts": 2}),
        )
        return made

    def _post(self, path: str, body: bytes = b"") -> None:
        request = urllib.request.Request(
            self.url + path, data=body, method="POST", headers={"Content-Type": "text/plain"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()

    def reset(self) -> None:
        """Forget every resource (moto re-creates the default IAM Identity Center instance on first use)."""
        self._post("/moto-api/reset")

    @contextmanager
    def enforce_iam(self) -> Iterator[None]:
        """Within the block, moto checks signatures and IAM policies on every request."""
        self._post("/moto-api/reset-auth", b"0")
        try:
            yield
        finally:
            self._post("/moto-api/reset-auth", b"inf")

    def stop(self) -> None:
        """Stop serving."""
        self._server.stop()


def start_moto_server() -> MotoServer:
    """Start a moto server with its per-request log silenced."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    return MotoServer()


@dataclass
class Org:
    """What ``build_org`` created: ids by name, for assertions."""

    instance_arn: str
    identity_store_id: str
    accounts: dict[str, str] = field(default_factory=dict)
    permission_sets: dict[str, str] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)


def instance(server: MotoServer) -> tuple[str, str]:
    """The (instance ARN, identity store id) moto created for the region."""
    found = server.client("sso-admin").list_instances()["Instances"]
    assert len(found) == 1, found
    return found[0]["InstanceArn"], found[0]["IdentityStoreId"]


def create_organization(server: MotoServer, org: Org, names: list[str]) -> None:
    """An organization with one member account per name (the management account is listed too)."""
    orgs = server.client("organizations")
    orgs.create_organization(FeatureSet="ALL")
    for name in names:
        status = orgs.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"]
        assert status["State"] == "SUCCEEDED", status
        org.accounts[name] = status["AccountId"]


def add_permission_set(server: MotoServer, org: Org, name: str, duration: str, description: str = "") -> str:
    """A permission set; returns its ARN."""
    params = {"Name": name, "InstanceArn": org.instance_arn, "SessionDuration": duration}
    if description:
        params["Description"] = description
    arn: str = server.client("sso-admin").create_permission_set(**params)["PermissionSet"]["PermissionSetArn"]
    org.permission_sets[name] = arn
    return arn


def add_user(server: MotoServer, org: Org, user_name: str, display_name: str) -> str:
    """An identity store user; returns its id."""
    given, _, family = display_name.partition(" ")
    user_id: str = server.client("identitystore").create_user(
        IdentityStoreId=org.identity_store_id,
        UserName=user_name,
        DisplayName=display_name,
        Name={"GivenName": given, "FamilyName": family or given},
        Emails=[{"Value": user_name, "Type": "work", "Primary": True}],
    )["UserId"]
    org.users[user_name] = user_id
    return user_id


def add_group(server: MotoServer, org: Org, name: str) -> str:
    """An identity store group; returns its id."""
    group_id: str = server.client("identitystore").create_group(
        IdentityStoreId=org.identity_store_id, DisplayName=name, Description=f"the {name} team"
    )["GroupId"]
    org.groups[name] = group_id
    return group_id


def assign(server: MotoServer, org: Org, account_id: str, permission_set: str, principal_type: str,
           principal_id: str) -> None:
    """Give a user or group a permission set in an account."""
    server.client("sso-admin").create_account_assignment(
        InstanceArn=org.instance_arn,
        TargetId=account_id,
        TargetType="AWS_ACCOUNT",
        PermissionSetArn=org.permission_sets[permission_set],
        PrincipalType=principal_type,
        PrincipalId=principal_id,
    )


def build_org(server: MotoServer) -> Org:
    """Three member accounts, two permission sets, two users, one group and five assignments.

    dev: ReadOnlyAccess for the Developers group, AdministratorAccess for alice;
    prod: ReadOnlyAccess for bob and for a user id that is not in the identity store (deleted);
    sandbox: AdministratorAccess for the Developers group; the management account: nothing.
    """
    arn, store = instance(server)
    org = Org(arn, store)
    create_organization(server, org, ["dev", "prod", "sandbox"])
    add_permission_set(server, org, "AdministratorAccess", "PT1H", "Full access, short sessions")
    add_permission_set(server, org, "ReadOnlyAccess", "PT8H", "Read everything")
    alice = add_user(server, org, "alice@example.com", "Alice Jones")
    bob = add_user(server, org, "bob@example.com", "Bob Smith")
    devs = add_group(server, org, "Developers")
    assign(server, org, org.accounts["dev"], "ReadOnlyAccess", "GROUP", devs)
    assign(server, org, org.accounts["dev"], "AdministratorAccess", "USER", alice)
    assign(server, org, org.accounts["prod"], "ReadOnlyAccess", "USER", bob)
    assign(server, org, org.accounts["prod"], "ReadOnlyAccess", "USER", GONE_USER)
    assign(server, org, org.accounts["sandbox"], "AdministratorAccess", "GROUP", devs)
    return org


#: A principal id with no user behind it (as after a user is deleted).
GONE_USER = "90676d5b-0000-4000-8000-00000000dead"


def limited_keys(server: MotoServer, actions: list[str]) -> tuple[str, str]:
    """Access keys of a new IAM user allowed only ``actions`` (none: allowed nothing)."""
    iam = server.client("iam")
    name = f"limited-{len(iam.list_users()['Users'])}"
    iam.create_user(UserName=name)
    if actions:
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}
        iam.put_user_policy(UserName=name, PolicyName="discover", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]
