"""STS AssumeRole in the emulator: query protocol, XML answers and errors, as real STS; the new keys work everywhere.

Real botocore clients sign every request; the emulator accepts only keys it issued.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.emulator import RunningEmulator, device_login, shared, shared_emulator, sso_client, sts_client

__all__ = ["shared", "shared_emulator"]

TARGET = "arn:aws:iam::222233334444:role/Deploy"


def _portal_credentials(url: str) -> dict[str, Any]:
    _, token = device_login(url)
    sso = sso_client(url)
    account = sso.list_accounts(accessToken=token["accessToken"])["accountList"][0]["accountId"]
    creds = sso.get_role_credentials(accessToken=token["accessToken"], accountId=account, roleName="ReadOnlyAccess")
    return {**creds["roleCredentials"], "accountId": account}


def _keys(answer: dict[str, Any]) -> dict[str, Any]:
    c = answer["Credentials"]
    return {"accessKeyId": c["AccessKeyId"], "secretAccessKey": c["SecretAccessKey"], "sessionToken": c["SessionToken"]}


def _error(info: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    response: Any = info.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Message"]


def test_assumed_role_is_what_get_caller_identity_reports(shared: RunningEmulator) -> None:
    source = _portal_credentials(shared.url)
    before = time.time()
    answer = sts_client(shared.url, source).assume_role(RoleArn=TARGET, RoleSessionName="ci-run", DurationSeconds=900)
    assert answer["AssumedRoleUser"]["Arn"] == "arn:aws:sts::222233334444:assumed-role/Deploy/ci-run"
    assert answer["AssumedRoleUser"]["AssumedRoleId"].endswith(":ci-run")
    assert before + 880 < answer["Credentials"]["Expiration"].timestamp() < time.time() + 920
    identity = sts_client(shared.url, _keys(answer)).get_caller_identity()
    assert identity["Account"] == "222233334444"
    assert identity["Arn"] == "arn:aws:sts::222233334444:assumed-role/Deploy/ci-run"
    assert identity["UserId"].endswith(":ci-run")
    ops = shared.stats()["operations"]
    assert (ops["AssumeRole"], ops["GetCallerIdentity"]) == (1, 1)


def test_an_assumed_role_can_assume_the_next(shared: RunningEmulator) -> None:
    first = sts_client(shared.url, _portal_credentials(shared.url)).assume_role(RoleArn=TARGET, RoleSessionName="a1")
    second = sts_client(shared.url, _keys(first)).assume_role(
        RoleArn="arn:aws:iam::333344445555:role/path/to/Audit", RoleSessionName="b1", ExternalId="ext-123")
    identity = sts_client(shared.url, _keys(second)).get_caller_identity()
    assert identity["Arn"] == "arn:aws:sts::333344445555:assumed-role/Audit/b1"
    assert shared.stats()["operations"]["AssumeRole"] == 2


@pytest.mark.parametrize(("params", "code", "status", "says"), [
    ({"RoleArn": "arn:aws:iam::12:role/X"}, "ValidationError", 400, "is invalid"),
    ({"RoleArn": "arn:aws:s3:::bucket"}, "ValidationError", 400, "is invalid"),
    ({"RoleSessionName": "x"}, "ValidationError", 400, "roleSessionName"),
    ({"RoleSessionName": "has space"}, "ValidationError", 400, "roleSessionName"),
    ({"DurationSeconds": 600}, "ValidationError", 400, "greater than or equal to 900"),
    ({"DurationSeconds": 50000}, "ValidationError", 400, "less than or equal to 43200"),
    ({"DurationSeconds": 7200}, "ValidationError", 400, "1 hour session limit for roles assumed by role chaining"),
    ({"SerialNumber": "arn:aws:iam::111122223333:mfa/me"}, "AccessDenied", 403, "TokenCode"),
])
def test_invalid_requests_get_sts_errors(shared: RunningEmulator, params: dict[str, Any], code: str, status: int,
                                         says: str) -> None:
    client = sts_client(shared.url, _portal_credentials(shared.url), parameter_validation=False)
    with pytest.raises(ClientError) as info:
        client.assume_role(**{"RoleArn": TARGET, "RoleSessionName": "ok", **params})
    got, got_status, message = _error(info)
    assert (got, got_status) == (code, status)
    assert says in message


@pytest.mark.slow
def test_only_issued_unexpired_keys_may_assume(shared: RunningEmulator) -> None:
    source = _portal_credentials(shared.url)
    for keys in (None, {**source, "sessionToken": "forged"}):
        with pytest.raises(ClientError) as info:
            sts_client(shared.url, keys).assume_role(RoleArn=TARGET, RoleSessionName="x1")
        assert _error(info)[:2] == ("InvalidClientTokenId", 403)
    shared.control(cred_ttl=1)
    short = _portal_credentials(shared.url)
    time.sleep(max(0.0, short["expiration"] / 1000 - time.time()) + 0.05)
    with pytest.raises(ClientError) as info:
        sts_client(shared.url, short).assume_role(RoleArn=TARGET, RoleSessionName="x1")
    assert _error(info)[:2] == ("ExpiredToken", 403)


def test_a_denied_role_answers_access_denied_in_xml(shared: RunningEmulator) -> None:
    shared.control(deny_assume_role=[TARGET])
    source = _portal_credentials(shared.url)
    with pytest.raises(ClientError) as info:
        sts_client(shared.url, source).assume_role(RoleArn=TARGET, RoleSessionName="x1")
    code, status, message = _error(info)
    assert (code, status) == ("AccessDenied", 403)
    assert f"is not authorized to perform: sts:AssumeRole on resource: {TARGET}" in message
    other = sts_client(shared.url, source).assume_role(RoleArn=TARGET + "2", RoleSessionName="x1")
    assert other["AssumedRoleUser"]["Arn"].endswith(":assumed-role/Deploy2/x1")


def test_errors_are_xml_not_json(shared: RunningEmulator) -> None:
    body = b"Action=Nope&Version=2011-06-15"
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(urllib.request.Request(shared.url + "/", data=body, method="POST"), timeout=10)
    assert info.value.code == 400
    assert info.value.headers["Content-Type"] == "text/xml"
    assert info.value.read().decode().startswith("<ErrorResponse")


def test_assumed_keys_sign_in_to_the_console(shared: RunningEmulator) -> None:
    answer = sts_client(shared.url, _portal_credentials(shared.url)).assume_role(RoleArn=TARGET, RoleSessionName="c1")
    c = answer["Credentials"]
    session = json.dumps({"sessionId": c["AccessKeyId"], "sessionKey": c["SecretAccessKey"],
                          "sessionToken": c["SessionToken"]})
    query = urllib.parse.urlencode({"Action": "getSigninToken", "Session": session})
    with urllib.request.urlopen(f"{shared.url}/federation?{query}", timeout=10) as reply:
        token = json.loads(reply.read())["SigninToken"]

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any) -> None:
            return None

    login = urllib.parse.urlencode({"Action": "login", "SigninToken": token, "Destination": "https://console.example/"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.build_opener(_NoRedirect()).open(f"{shared.url}/federation?{login}", timeout=10)
    assert info.value.code == 302 and info.value.headers["Location"] == "https://console.example/"
