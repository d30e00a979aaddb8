"""The AWS config model: parsing, botocore's merge rules, ssocred targets and every error."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from ssocred.adapters.config_file import load
from ssocred.adapters.paths import display_path
from ssocred.errors import EXIT_CONFIG, EXIT_USAGE, ConfigError
from ssocred.model import sso as model
from ssocred.model.config import (
    AwsConfig,
    ProfileConfig,
    ResolvedSso,
    SsoSessionConfig,
    SsoTarget,
    parse,
    parse_nested,
    parse_scopes,
)

URL = "https://d-1234567890.awsapps.com/start"
ACCOUNT = "111122223333"

MODERN = f"""
[profile dev]
sso_session = corp
sso_account_id = {ACCOUNT}
sso_role_name = Admin
region = eu-west-1

[sso-session corp]
sso_start_url = {URL}
sso_region = us-east-1
sso_registration_scopes = sso:account:access
"""


def cfg(text: str) -> AwsConfig:
    return parse(textwrap.dedent(text))


def error(call: object, *args: str) -> str:
    """The one-line text of the ConfigError that ``call(*args)`` raises."""
    assert callable(call)
    with pytest.raises(ConfigError) as info:
        call(*args)
    line = info.value.line()
    assert len(line.splitlines()) == 1
    return line


# --- parse_scopes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "scopes"),
    [
        (None, ()),
        ("", ()),
        ("scope", ("scope",)),
        (" scope ", ("scope",)),
        ("a, b,", ("a", "b")),
        ("a,b", ("a", "b")),
        (" a , , b ,", ("a", "b")),
        (",,,", ()),
    ],
)
def test_parse_scopes(raw: str | None, scopes: tuple[str, ...]) -> None:
    assert parse_scopes(raw) == scopes


# --- sections and values ----------------------------------------------------------------


def test_modern_profile_and_session_are_parsed() -> None:
    c = cfg(MODERN)
    assert set(c.profiles) == {"dev"}
    dev = c.profile("dev")
    assert (dev.sso_session, dev.sso_account_id, dev.sso_role_name) == ("corp", ACCOUNT, "Admin")
    assert dev.region == "eu-west-1"
    assert dev.sso_start_url is None and dev.credential_process is None
    corp = c.sso_session("corp")
    assert (corp.start_url, corp.region) == (URL, "us-east-1")
    assert corp.registration_scopes == ("sso:account:access",) and corp.scopes_configured
    assert corp.values["sso_region"] == "us-east-1"


def test_default_section_is_a_profile_and_bare_sections_are_not() -> None:
    c = cfg(
        """
        [default]
        region = us-west-2
        [dev]
        region = eu-west-1
        [preview]
        x = 1
        """
    )
    assert list(c.profiles) == ["default"]
    assert c.profile("default").region == "us-west-2"
    assert c.other_sections == ("dev", "preview")


def test_profile_named_default_and_default_section_later_one_wins() -> None:
    c = cfg("[default]\nregion = a\n[profile default]\nregion = b\n")
    assert c.profile("default").region == "b"
    c = cfg("[profile default]\nregion = b\n[default]\nregion = a\n")
    assert c.profile("default").region == "a"


def test_section_names_split_like_a_shell() -> None:
    c = cfg(
        """
        [profile "my dev"]
        region = a
        [profile  spaced]
        region = b
        [profile a b]
        region = c
        [profile]
        region = d
        [profile 'open]
        region = e
        [sso-session "corp sso"]
        sso_region = us-east-1
        [profiledev x]
        region = f
        """
    )
    assert list(c.profiles) == ["my dev", "spaced", "x"]
    assert list(c.sso_sessions) == ["corp sso"]


def test_two_sections_naming_the_same_profile_later_one_wins_in_first_position() -> None:
    c = cfg("[profile a]\nregion = 1\n[profile b]\nregion = 2\n[profile  a]\nregion = 3\n")
    assert list(c.profiles) == ["a", "b"]
    assert c.profile("a").values == {"region": "3"}


def test_keys_are_lowercased_values_kept_and_inline_comments_are_values() -> None:
    c = cfg(
        """
        # a comment
        ; another
        [profile dev]
        # comment inside
        REGION = eu-west-1
        Output: json
        note = a # not a comment ; neither
        empty =
        """
    )
    assert dict(c.profile("dev").values) == {
        "region": "eu-west-1",
        "output": "json",
        "note": "a # not a comment ; neither",
        "empty": "",
    }


def test_nested_values_are_kept_raw_and_services_are_parsed() -> None:
    c = cfg(
        """
        [profile dev]
        services = local
        s3 =
          addressing_style = path
          signature_version = s3v4
        [services local]
        sso_oidc =
          endpoint_url = http://127.0.0.1:7001
        sso =
          endpoint_url = http://127.0.0.1:7002
        """
    )
    s3 = c.profile("dev").values["s3"]
    assert s3 == "\naddressing_style = path\nsignature_version = s3v4"
    assert parse_nested(s3) == {"addressing_style": "path", "signature_version": "s3v4"}
    assert parse_nested(c.services["local"]["sso_oidc"]) == {"endpoint_url": "http://127.0.0.1:7001"}
    assert parse_nested(c.services["local"]["sso"]) == {"endpoint_url": "http://127.0.0.1:7002"}


def test_nested_block_without_equals_is_an_error_like_botocore() -> None:
    line = error(parse, "[profile dev]\ns3 =\n  addressing_style path\n")
    assert "s3 in [profile dev]" in line and "addressing_style path" in line and "~/.aws/config" in line


def test_default_section_keys_reach_every_section() -> None:
    c = cfg("[DEFAULT]\nregion = x\n[profile dev]\noutput = json\n[sso-session s]\nsso_region = r\n")
    assert list(c.profiles) == ["dev"]
    assert c.profile("dev").values == {"output": "json", "region": "x"}
    assert c.sso_session("s").values["region"] == "x"


def test_windows_and_old_mac_line_endings() -> None:
    c = parse("[profile a]\r\nregion = 1\r\n[profile b]\rregion = 2\r")
    assert c.profile("a").region == "1" and c.profile("b").region == "2"


def test_empty_text_gives_an_empty_config() -> None:
    c = parse("")
    assert (dict(c.profiles), dict(c.sso_sessions), c.path) == ({}, {}, "~/.aws/config")


# --- syntax errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("region = x\n", "~/.aws/config line 1 is outside any section: region = …"),
        ("[a]\nx = 1\njunk\n", "~/.aws/config line 3 is neither"),
        ("[a]\n= 1\n", "~/.aws/config line 2 is neither"),
        ("[profile a]\n[b]\n[profile a]\n", "~/.aws/config line 3 repeats the section [profile a]"),
        ("[a]\nregion = 1\nRegion = 2\n", "~/.aws/config line 3 repeats the key region in [a]"),
        ("\ufeff[default]\n", "~/.aws/config starts with a byte order mark"),
    ],
)
def test_syntax_errors_name_the_line(text: str, expected: str) -> None:
    assert expected in error(parse, text)


def test_syntax_errors_never_quote_a_value() -> None:
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    outside = error(parse, f"aws_secret_access_key = {secret}\n[default]\n")
    assert outside.startswith("~/.aws/config line 1 is outside any section: aws_secret_access_key = …")
    pasted = error(parse, f"[default]\nregion = x\n{secret}\n")
    assert "line 3 is neither" in pasted and "a line of 40 characters" in pasted
    assert secret not in outside + pasted and secret[:8] not in outside + pasted


def test_syntax_error_uses_the_given_path() -> None:
    assert error(parse, "[a]\njunk\n", "/etc/aws.ini").startswith("/etc/aws.ini line 2 ")


# --- lookups ----------------------------------------------------------------------------


def test_unknown_profile_lists_close_and_available_names() -> None:
    line = error(cfg(MODERN + "[profile prod]\n").profile, "dve")
    assert line == (
        "profile 'dve' is not defined in ~/.aws/config; did you mean 'dev'? defined profiles: dev, prod"
    )


def test_unknown_profile_in_an_empty_config_says_what_to_add() -> None:
    assert error(parse("").profile, "dev") == (
        "profile 'dev' is not defined in ~/.aws/config; add a [profile dev] section to it"
    )


def test_unknown_profile_that_is_a_bare_section_says_how_to_rename() -> None:
    line = error(cfg("[dev]\nregion = x\n").profile, "dev")
    assert "needs [profile dev], not [dev]" in line


def test_unknown_sso_session() -> None:
    assert error(cfg("").sso_session, "corp") == (
        "sso-session 'corp' is not defined in ~/.aws/config; "
        "add an [sso-session corp] section with sso_start_url and sso_region"
    )
    assert "did you mean 'corp'?" in error(cfg(MODERN).sso_session, "crop")


# --- resolve_sso ------------------------------------------------------------------------


def test_resolve_modern_profile() -> None:
    r = cfg(MODERN).resolve_sso("dev")
    assert r == ResolvedSso("corp", URL, "us-east-1", ("sso:account:access",), True, ACCOUNT, "Admin")
    assert not r.legacy and r.cache_key == "corp"


def test_resolve_modern_profile_without_account_or_role_or_scopes() -> None:
    c = cfg(
        f"""
        [profile dev]
        sso_session = corp
        credential_process = ssocred process --profile dev
        [sso-session corp]
        sso_start_url = {URL}
        sso_region = us-east-1
        """
    )
    r = c.resolve_sso("dev")
    assert (r.account_id, r.role_name) == (None, None)
    assert r.scopes == model.DEFAULT_SCOPES and not r.scopes_configured


def test_resolve_legacy_profile() -> None:
    c = cfg(
        f"""
        [profile legacy]
        sso_start_url = {URL}/
        sso_region = us-west-2
        sso_account_id = {ACCOUNT}
        sso_role_name = R
        """
    )
    r = c.resolve_sso("legacy")
    assert r == ResolvedSso(None, URL + "/", "us-west-2", model.DEFAULT_SCOPES, False, ACCOUNT, "R")
    assert r.legacy and r.cache_key == URL + "/"


def test_resolve_default_profile() -> None:
    c = cfg(MODERN + "[default]\nsso_session = corp\n")
    assert c.resolve_sso("default").session_name == "corp"


def test_matching_values_on_profile_and_session_are_fine() -> None:
    c = cfg(MODERN.replace("region = eu-west-1", f"sso_region = us-east-1\nsso_start_url = {URL}"))
    assert c.resolve_sso("dev").region == "us-east-1"


def test_inconsistent_value_between_profile_and_session() -> None:
    text = MODERN.replace("region = eu-west-1", "sso_region = us-east-1")
    c = cfg(
        text.replace("sso_region = us-east-1\nsso_registration", "sso_region = eu-west-1\nsso_registration")
    )
    assert error(c.resolve_sso, "dev") == (
        "the value for sso_region is inconsistent between profile 'dev' (us-east-1) and "
        "sso-session 'corp' (eu-west-1) in ~/.aws/config; remove it from the profile"
    )


def test_inconsistency_covers_every_session_key_and_compares_nested_blocks_parsed() -> None:
    text = MODERN + "s3 =\n  a = 1\n"
    same = text.replace("region = eu-west-1", "s3 =\n    a   =   1\n")
    assert cfg(same).resolve_sso("dev").session_name == "corp"
    other = text.replace("region = eu-west-1", "s3 =\n  a = 2\n")
    assert "the value for s3 is inconsistent" in error(cfg(other).resolve_sso, "dev")


def test_profile_referencing_an_undefined_session() -> None:
    c = cfg("[profile dev]\nsso_session = corp\n")
    assert error(c.resolve_sso, "dev") == (
        "profile 'dev' references sso-session 'corp' which is not defined in ~/.aws/config; "
        "add an [sso-session corp] section with sso_start_url and sso_region"
    )


def test_session_missing_region() -> None:
    c = cfg(f"[profile dev]\nsso_session = corp\n[sso-session corp]\nsso_start_url = {URL}\n")
    expected = (
        "sso-session 'corp' in ~/.aws/config is missing sso_region; "
        "add sso_region = <region> to [sso-session corp]"
    )
    assert error(c.resolve_sso, "dev") == expected
    assert error(c.resolve_session, "corp") == expected


def test_session_missing_both_and_empty_values_count_as_missing() -> None:
    c = cfg("[sso-session corp]\nsso_start_url =\n")
    assert error(c.resolve_session, "corp") == (
        "sso-session 'corp' in ~/.aws/config is missing sso_start_url and sso_region; "
        "add sso_start_url = <start URL> and sso_region = <region> to [sso-session corp]"
    )


def test_session_keys_on_the_profile_only_are_moved_not_merged() -> None:
    c = cfg(f"[profile dev]\nsso_session = corp\nsso_start_url = {URL}\nsso_region = r\n[sso-session corp]\n")
    assert error(c.resolve_sso, "dev").endswith(
        "; move sso_start_url and sso_region from [profile dev] to [sso-session corp]"
    )


def test_multi_line_region_is_rejected() -> None:
    c = cfg(f"[sso-session corp]\nsso_start_url = {URL}\nsso_region =\n  a = b\n")
    assert "has a multi-line sso_region" in error(c.resolve_session, "corp")


def test_legacy_profile_missing_region() -> None:
    c = cfg(f"[profile legacy]\nsso_start_url = {URL}\n")
    assert error(c.resolve_sso, "legacy") == (
        "profile 'legacy' in ~/.aws/config is missing sso_region; "
        "add sso_region = <region> to [profile legacy]"
    )
    c = cfg(f"[default]\nsso_start_url = {URL}\n")
    assert error(c.resolve_sso, "default").endswith("to [default]")


def test_profile_without_sso_settings() -> None:
    c = cfg("[profile dev]\nregion = eu-west-1\nsso_region = us-east-1\n")
    assert error(c.resolve_sso, "dev") == (
        "profile 'dev' in ~/.aws/config has no SSO settings (sso_session or sso_start_url); "
        "add sso_session = <name> and an [sso-session <name>] section with sso_start_url and sso_region"
    )


def test_resolve_unknown_profile_and_session() -> None:
    c = cfg(MODERN)
    assert "profile 'nope' is not defined" in error(c.resolve_sso, "nope")
    assert "sso-session 'nope' is not defined" in error(c.resolve_session, "nope")


def test_resolve_session() -> None:
    r = cfg(MODERN).resolve_session("corp")
    assert r == ResolvedSso("corp", URL, "us-east-1", ("sso:account:access",), True, None, None)


def test_session_scopes() -> None:
    c = cfg(f"[sso-session a]\nsso_start_url = {URL}\nsso_region = r\nsso_registration_scopes = x, y,\n")
    assert c.resolve_session("a").scopes == ("x", "y")
    assert c.sso_session("a").effective_scopes() == ("x", "y")
    c = cfg(f"[sso-session a]\nsso_start_url = {URL}\nsso_region = r\nsso_registration_scopes =\n")
    s = c.sso_session("a")
    assert (
        s.scopes_configured and s.registration_scopes == () and s.effective_scopes() == model.DEFAULT_SCOPES
    )


def test_directly_built_session_resolves() -> None:
    c = AwsConfig(sso_sessions={"corp": SsoSessionConfig("corp", URL, "us-east-1")})
    assert c.resolve_session("corp").start_url == URL


# --- ssocred_target ---------------------------------------------------------------------


def target_cfg(body: str) -> AwsConfig:
    return cfg("[profile dev]\n" + textwrap.dedent(body))


def test_target_from_own_keys() -> None:
    c = target_cfg(f"ssocred_session = corp\nssocred_account_id = {ACCOUNT}\nssocred_role_name = Admin\n")
    assert c.ssocred_target("dev") == SsoTarget("corp", ACCOUNT, "Admin")


OTHER = "444455556666"


@pytest.mark.parametrize(
    "line",
    [
        f"ssocred process --sso-session corp --account-id {ACCOUNT} --role-name Admin",
        f"ssocred process --sso-session=corp --account-id={ACCOUNT} --role-name=Admin",
        f"/usr/bin/ssocred process --role-name 'Admin' --account-id \"{ACCOUNT}\" --sso-session=corp",
        f"python -m ssocred process --sso-session corp --account-id {ACCOUNT} --role-name Admin",
        f"'/opt/my tools/ssocred' process --sso-session corp --account-id {ACCOUNT} --role-name Admin --login",
    ],
)
def test_target_from_the_credential_process_line(line: str) -> None:
    c = target_cfg(f"credential_process = {line}\n")
    assert c.ssocred_target("dev") == SsoTarget("corp", ACCOUNT, "Admin")


def test_target_quoted_value_with_spaces_and_a_leading_dash() -> None:
    c = target_cfg(
        f"credential_process = ssocred process --sso-session corp --account-id {ACCOUNT} --role-name 'A B'\n"
    )
    assert c.ssocred_target("dev").role_name == "A B"
    c = target_cfg(
        f"credential_process = ssocred process --sso-session corp --account-id {ACCOUNT} --role-name=-Admin\n"
    )
    assert c.ssocred_target("dev").role_name == "-Admin"


def test_own_keys_win_over_the_line() -> None:
    c = target_cfg(
        f"ssocred_account_id = {OTHER}\n"
        f"credential_process = ssocred process --sso-session corp --account-id {ACCOUNT} --role-name R\n"
    )
    assert c.ssocred_target("dev") == SsoTarget("corp", OTHER, "R")


def test_the_line_beats_the_sso_session_key() -> None:
    c = target_cfg(
        "sso_session = corp\n"
        f"credential_process = ssocred process --sso-session other --account-id {ACCOUNT} --role-name R\n"
    )
    assert c.ssocred_target("dev").session == "other"


def test_sso_account_and_role_keys_are_a_last_resort() -> None:
    c = target_cfg(f"sso_session = corp\nsso_account_id = {ACCOUNT}\nsso_role_name = R\n")
    assert c.ssocred_target("dev") == SsoTarget("corp", ACCOUNT, "R")


def test_a_line_that_runs_another_program_names_nothing() -> None:
    c = target_cfg(f"ssocred_session = s\ncredential_process = aws-vault exec --account-id {ACCOUNT} --role-name R\n")
    assert "does not name the account and role" in error(c.ssocred_target, "dev")


def test_a_line_naming_another_profile_is_followed() -> None:
    c = cfg(
        "[profile dev]\ncredential_process = ssocred process --profile base --login\n"
        f"[profile base]\nssocred_session = corp\nssocred_account_id = {ACCOUNT}\nssocred_role_name = R\n"
        "credential_process = ssocred process --profile base\n"
    )
    assert c.ssocred_target("dev") == c.ssocred_target("base") == SsoTarget("corp", ACCOUNT, "R")


def test_profiles_naming_each_other_are_a_config_error() -> None:
    c = cfg(
        "[profile a]\ncredential_process = ssocred process --profile b\n"
        "[profile b]\ncredential_process = ssocred process --profile=a\n"
    )
    message = error(c.ssocred_target, "a")
    assert "[profile a] and [profile b]" in message and "name each other" in message


def test_a_line_naming_its_own_profile_leaves_the_keys_to_decide() -> None:
    c = target_cfg("ssocred_session = corp\ncredential_process = ssocred process --profile dev\n")
    assert "does not name the account and role" in error(c.ssocred_target, "dev")


def test_target_missing_parts_say_which_and_how() -> None:
    c = target_cfg("ssocred_session = corp\n")
    assert error(c.ssocred_target, "dev") == (
        "profile 'dev' in ~/.aws/config does not name the account and role for ssocred; "
        "add ssocred_account_id = <account id> and ssocred_role_name = <role name> to [profile dev]"
    )
    c = cfg(f"[default]\nssocred_account_id = {ACCOUNT}\nssocred_role_name = R\n")
    assert error(c.ssocred_target, "default") == (
        "profile 'default' in ~/.aws/config does not name the sso-session for ssocred; "
        "add ssocred_session = <sso-session name> to [default]"
    )


def test_target_empty_keys_count_as_missing() -> None:
    c = target_cfg("ssocred_session =\nssocred_account_id = 1\nssocred_role_name = R\n")
    assert "does not name the sso-session" in error(c.ssocred_target, "dev")


@pytest.mark.parametrize(("key", "value"), [("ssocred_account_id", "1"), ("sso_account_id", "abcdefghijkl"),
                                            ("ssocred_account_id", "1111222233334")])
def test_an_account_key_that_is_no_account_id(key: str, value: str) -> None:
    c = target_cfg(f"ssocred_session = corp\n{key} = {value}\nssocred_role_name = R\n")
    with pytest.raises(ConfigError) as info:
        c.ssocred_target("dev")
    assert info.value.exit_code == EXIT_CONFIG
    assert info.value.line() == (f"{key} = {value} in [profile dev] of ~/.aws/config is not an AWS account id; "
                                 "an account id is 12 digits, e.g. 111122223333")


def test_unreadable_credential_process_line() -> None:
    c = target_cfg("ssocred_session = corp\ncredential_process = ssocred process --role-name 'unbalanced\n")
    message = error(c.ssocred_target, "dev")
    assert message.startswith("credential_process in [profile dev] of ~/.aws/config cannot be read")


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ("--account-id", "--account-id needs a value"),
        ("--account-id --role-name R", "--account-id needs a value"),
        (f"--sso-session corp --account-id {ACCOUNT} --role-name --login", "--role-name needs a value"),
        (f"--sso-session corp --account-id {ACCOUNT} --role-name -Admin", "--role-name needs a value"),
        (f"--sso-session x --sso-session corp --account-id {ACCOUNT} --role-name R", "--sso-session is given more"),
        (f"--account-id {ACCOUNT} -- --role-name R", "unknown argument '--'"),
        (f"--account-id {ACCOUNT} --role-name R", "ssocred process needs --sso-session (or --profile)"),
        ("--sso-session corp --account-id 1 --role-name R", "--account-id '1' is not an AWS account id"),
        (f"--sso-session corp --account-id {ACCOUNT} --role-name ''", "--role-name is empty"),
    ],
)
def test_arguments_ssocred_process_refuses_are_its_usage_error(args: str, problem: str) -> None:
    c = target_cfg(f"ssocred_session = corp\nsso_role_name = R\ncredential_process = ssocred process {args}\n")
    with pytest.raises(ConfigError) as info:
        c.ssocred_target("dev")
    # The SDK that runs this line gets exit 2 from ssocred process; every other reader agrees.
    assert info.value.exit_code == EXIT_USAGE
    assert info.value.line().startswith(f"credential_process in [profile dev] of ~/.aws/config: {problem}")
    assert len(info.value.line().splitlines()) == 1


def test_a_complete_set_of_keys_ignores_a_broken_line() -> None:
    c = target_cfg(
        f"ssocred_session = s\nssocred_account_id = {ACCOUNT}\nssocred_role_name = R\ncredential_process = x 'y\n"
    )
    assert c.ssocred_target("dev") == SsoTarget("s", ACCOUNT, "R")


def test_target_of_unknown_profile() -> None:
    assert "profile 'nope' is not defined" in error(cfg(MODERN).ssocred_target, "nope")


# --- messages ---------------------------------------------------------------------------


def test_messages_stay_on_one_line_with_odd_names() -> None:
    c = cfg('[profile "a\u2028b"]\nsso_session = x\x0by\n')
    name = next(iter(c.profiles))
    assert "\\u2028" in error(c.resolve_sso, name)


def test_display_path_uses_tilde(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert display_path(tmp_path / ".aws" / "config") == "~/.aws/config"
    assert display_path(tmp_path) == "~"
    assert display_path(str(tmp_path) + "x/config") == str(tmp_path) + "x/config"
    assert display_path("/etc/aws/config") == "/etc/aws/config"


def test_profile_config_values_default_and_properties() -> None:
    p = ProfileConfig("p", {"credential_process": "ssocred process", "sso_start_url": URL, "sso_region": "r"})
    assert (p.credential_process, p.sso_start_url, p.sso_region) == ("ssocred process", URL, "r")
    assert ProfileConfig("q").values == {}


# --- load -------------------------------------------------------------------------------


@pytest.fixture
def fake_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".aws").mkdir()
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / ".aws" / "config"))
    return tmp_path


def test_load_missing_file_is_empty(fake_home: Path) -> None:
    c = load()
    assert c == AwsConfig(path="~/.aws/config")
    assert error(c.profile, "dev") == "profile 'dev' is not defined in ~/.aws/config; add a [profile dev] section to it"


def test_load_reads_the_default_path_and_shows_it_with_tilde(fake_home: Path) -> None:
    (fake_home / ".aws" / "config").write_text("[profile dev]\nsso_session = x\n")
    c = load()
    assert c.path == "~/.aws/config"
    assert "which is not defined in ~/.aws/config;" in error(c.resolve_sso, "dev")


def test_load_explicit_path_and_directory(fake_home: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.ini"
    other.write_text("[profile x]\n")
    assert list(load(other).profiles) == ["x"]
    assert load(tmp_path).profiles == {}  # like botocore: not a regular file, no config


def test_load_syntax_error_names_the_file(fake_home: Path) -> None:
    (fake_home / ".aws" / "config").write_text("[default]\nregion\n")
    assert error(load).startswith("~/.aws/config line 2 is neither")


def test_load_bad_utf8(fake_home: Path) -> None:
    (fake_home / ".aws" / "config").write_bytes(b"[default]\nregion = \xff\n")
    assert error(load) == "~/.aws/config line 2 is not valid UTF-8; save the file as UTF-8"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_load_unreadable(fake_home: Path) -> None:
    path = fake_home / ".aws" / "config"
    path.write_text("[default]\n")
    path.chmod(0)
    assert error(load).startswith("cannot read ~/.aws/config: Permission denied")


def test_load_unreadable_as_root(fake_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def deny(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied")

    (fake_home / ".aws" / "config").write_text("[default]\n")
    monkeypatch.setattr(Path, "read_bytes", deny)
    assert error(load) == (
        "cannot read ~/.aws/config: Permission denied; make it readable (chmod u+r ~/.aws/config)"
    )


# --- cross-check with botocore ----------------------------------------------------------

BOTOCORE_CASES = [
    MODERN,
    "[default]\nregion = a\n[profile default]\nregion = b\n[dev]\nx = 1\n",
    '[profile "my dev"]\n[profile a b]\n[profile]\n[sso-session "c d"]\n[sso-session]\n[profilex y]\n',
    "[DEFAULT]\nregion = x\n[profile a]\n[sso-session s]\n[services local]\nsso =\n  endpoint_url = u\n",
    "# c\n; c\n[profile a]\ns3 =\n  addressing_style = path\n\n[profile b]\nregion: x\n",
    "",
]


@pytest.mark.parametrize("text", BOTOCORE_CASES)
def test_same_profiles_and_sessions_as_botocore(
    text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import botocore.session

    path = tmp_path / "config"
    path.write_text(text)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(path))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    session = botocore.session.Session()
    ours = load(path)
    assert session.available_profiles == list(ours.profiles)
    full = session.full_config
    assert list(full.get("sso_sessions", {})) == list(ours.sso_sessions)
    assert list(full.get("services", {})) == list(ours.services)
    for name, profile in ours.profiles.items():
        theirs = full["profiles"][name]
        assert {k: v for k, v in theirs.items() if isinstance(v, str)} == {
            k: v for k, v in profile.values.items() if not v.startswith("\n")
        }


@pytest.mark.parametrize(
    "text",
    [
        "region = x\n",
        "[a]\njunk\n",
        "[a]\n[a]\n",
        "[a]\nx = 1\nx = 2\n",
        "[a]\ns3 =\n  no equals here\n",
    ],
)
def test_botocore_fails_on_the_same_inputs(text: str, tmp_path: Path) -> None:
    import botocore.configloader
    import botocore.exceptions

    path = tmp_path / "config"
    path.write_text(text)
    with pytest.raises(botocore.exceptions.ConfigParseError):
        botocore.configloader.load_config(str(path))
    with pytest.raises(ConfigError):
        load(path)
