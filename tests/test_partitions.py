"""Partitions: every AWS endpoint comes from botocore's partition data, and every start URL shape is accepted.

No request is sent: the clients are only built, and their endpoints read.
"""

from __future__ import annotations

import pytest

from ssocred.adapters import aws
from ssocred.adapters.oidc import Oidc
from ssocred.cli.configure import check_region, check_start_url
from ssocred.model.config import REGION_NAME

#: region -> (sso-oidc endpoint, SSO portal endpoint), as the partitions define them.
ENDPOINTS = {
    "us-east-1": ("https://oidc.us-east-1.amazonaws.com", "https://portal.sso.us-east-1.amazonaws.com"),
    "eu-central-2": ("https://oidc.eu-central-2.amazonaws.com", "https://portal.sso.eu-central-2.amazonaws.com"),
    "us-gov-west-1": ("https://oidc.us-gov-west-1.amazonaws.com", "https://portal.sso.us-gov-west-1.amazonaws.com"),
    "cn-north-1": ("https://oidc.cn-north-1.amazonaws.com.cn", "https://portal.sso.cn-north-1.amazonaws.com.cn"),
}


@pytest.fixture(autouse=True)
def _no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SSO", "AWS_ENDPOINT_URL_SSO_OIDC", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")


@pytest.mark.parametrize("region", sorted(ENDPOINTS))
def test_endpoints_follow_the_partition(region: str) -> None:
    oidc, portal = ENDPOINTS[region]
    assert Oidc(region).endpoint == oidc
    assert aws.client("sso", region).meta.endpoint_url == portal
    assert REGION_NAME.match(region) and check_region(region) is None


@pytest.mark.parametrize("url", [
    "https://d-1234567890.awsapps.com/start",
    "https://d-1234567890.awsapps.com/start/",
    "https://my-company.awsapps.com/start",                       # a vanity portal name
    "https://start.us-gov-home.awsapps.com/directory/d-906712345",  # GovCloud (US)
    "https://start.us-gov-west-1.us-gov-home.awsapps.com/directory/d-9867123456",
    "https://d-9067123456.awsapps.cn/start",                      # China
])
def test_every_start_url_shape_is_accepted(url: str) -> None:
    assert check_start_url(url) is None


@pytest.mark.parametrize("url", ["http://d-1234567890.awsapps.com/start", "d-1234567890.awsapps.com/start", ""])
def test_a_start_url_must_be_https(url: str) -> None:
    assert check_start_url(url) is not None
