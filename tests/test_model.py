"""The pure model: times, refresh windows, output shape, PKCE."""

from __future__ import annotations

import pytest

from ssocred.model.sso import (
    Registration,
    RoleCredentials,
    Token,
    credentials_fresh,
    credentials_from_dict,
    credentials_to_dict,
    iso_z,
    needs_inline_refresh,
    parse_time,
    process_output,
    scaled_window,
    token_from_dict,
    token_to_dict,
    token_usable,
)
from ssocred.usecases.login import authorize_url, challenge_for

NOW = 1_800_000_000.0


def _token(lifetime: float, left: float, *, refresh: bool = True, reg_left: float = 86400) -> Token:
    reg = Registration("cid", "secret", NOW + reg_left, ("sso:account:access",), ("refresh_token",))
    return Token("at", NOW + left, NOW + left - lifetime, "https://d-1.awsapps.com/start", "us-east-1",
                 "rt" if refresh else None, reg)


def _creds(lifetime: float, left: float) -> RoleCredentials:
    return RoleCredentials("ASIA1", "sk", "st", NOW + left, "111122223333", "R", NOW + left - lifetime)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2099-01-01T00:00:00Z", 4070908800.0),
        ("2099-01-01T00:00:00UTC", 4070908800.0),
        ("2099-01-01T00:00:00+00:00", 4070908800.0),
        ("2099-01-01T01:00:00+01:00", 4070908800.0),
        ("2099-01-01T00:00:00.500Z", 4070908800.5),
        ("2099-01-01T00:00:00", 4070908800.0),
    ],
)
def test_parse_time(text: str, expected: float) -> None:
    assert parse_time(text) == expected


def test_parse_time_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        parse_time("tomorrow")


def test_iso_z() -> None:
    assert iso_z(0) == "1970-01-01T00:00:00Z"
    assert iso_z(4070908800.9) == "2099-01-01T00:00:00Z"


@pytest.mark.parametrize(("window", "lifetime", "expected"), [(900, 3600, 900), (900, 40, 10), (900, 0, 900)])
def test_scaled_window(window: float, lifetime: float, expected: float) -> None:
    assert scaled_window(window, lifetime) == expected


@pytest.mark.parametrize(
    ("lifetime", "left", "expected"),
    [(3600, 3000, False), (3600, 301, False), (3600, 299, True), (3600, -1, True), (30, 8, False), (30, 7, True)],
)
def test_inline_refresh_window_scales_with_lifetime(lifetime: float, left: float, expected: bool) -> None:
    assert needs_inline_refresh(_token(lifetime, left), NOW) is expected


def test_token_usable_and_refreshable() -> None:
    assert token_usable(_token(3600, 60), NOW)
    assert not token_usable(_token(3600, 10), NOW)
    assert _token(3600, -5).refreshable(NOW)
    assert not _token(3600, -5, refresh=False).refreshable(NOW)
    assert not _token(3600, -5, reg_left=-1).refreshable(NOW)


@pytest.mark.parametrize(
    ("lifetime", "left", "expected"),
    [(3600, 901, True), (3600, 899, False), (40, 11, True), (40, 9, False), (43200, 1000, True)],
)
def test_credentials_fresh_uses_botocores_window_scaled(lifetime: float, left: float, expected: bool) -> None:
    assert credentials_fresh(_creds(lifetime, left), NOW) is expected


def test_registration_reuse() -> None:
    pkce = Registration("c", "s", NOW + 30 * 86400, (), ("authorization_code", "refresh_token"))
    assert pkce.usable(NOW, for_auth_code=True) and not pkce.usable(NOW, for_auth_code=False)
    # Under a week left: a login registers anew rather than run into the end later.
    assert not Registration("c", "s", NOW + 6 * 86400, (), ()).usable(NOW, for_auth_code=False)
    assert Registration("c", "s", NOW + 8 * 86400, (), ()).usable(NOW, for_auth_code=False)


def test_process_output_contract() -> None:
    out = process_output(_creds(3600, 3600))
    assert out == {"Version": 1, "AccessKeyId": "ASIA1", "SecretAccessKey": "sk", "SessionToken": "st",
                   "Expiration": iso_z(NOW + 3600), "AccountId": "111122223333"}
    assert type(out["Version"]) is int


def test_round_trips() -> None:
    token = _token(3600, 100)
    assert token_from_dict(token_to_dict(token)) == token
    creds = _creds(3600, 100)
    assert credentials_from_dict(credentials_to_dict(creds)) == creds


def test_secrets_are_not_in_reprs() -> None:
    text = repr(_token(3600, 100)) + repr(_creds(3600, 100))
    assert "'at'" not in text and "'rt'" not in text and "'secret'" not in text and "'sk'" not in text


def test_pkce_rfc7636_vector_and_authorize_url() -> None:
    assert challenge_for("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    url = authorize_url("https://oidc.us-east-1.amazonaws.com", "CLIENTID123",
                        "http://127.0.0.1:53211/oauth/callback", "0f4b3c5e-8a1d-4c2b-9f6e-1a2b3c4d5e6f",
                        ("sso:account:access", "codewhisperer:completions"),
                        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
    assert url == (
        "https://oidc.us-east-1.amazonaws.com/authorize?response_type=code&client_id=CLIENTID123&redirect_uri="
        "http%3A%2F%2F127.0.0.1%3A53211%2Foauth%2Fcallback&state=0f4b3c5e-8a1d-4c2b-9f6e-1a2b3c4d5e6f"
        "&code_challenge_method=S256&scopes=sso%3Aaccount%3Aaccess%20codewhisperer%3Acompletions"
        "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )
