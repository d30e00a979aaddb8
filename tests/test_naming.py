"""Profile names and the config editor's pure text transformations."""

from __future__ import annotations

import configparser

import pytest
from configupdater import ConfigUpdater
from hypothesis import given, settings
from hypothesis import strategies as st

from ssocred.adapters.config_file import managed_profiles, populate_text, sso_session_text
from ssocred.model.naming import Target, assign_names, check_template, profile_name, profile_values, safe_name

DEV = Target("corp", "111111111111", "Development", "AdministratorAccess", "dev@example.com")


@pytest.mark.parametrize(("text", "expected"), [
    ("My Team/Dev", "My-Team-Dev"),
    ("  spaced  out ", "spaced-out"),
    ("a]b[c", "a-b-c"),
    ("ünïcode", "n-code"),
    ("...", "profile"),
    ("dev.ReadOnly", "dev.ReadOnly"),
    ("$(rm -rf ~)", "rm-rf"),
])
def test_safe_name(text: str, expected: str) -> None:
    assert safe_name(text) == expected


@pytest.mark.parametrize(("template", "problem"), [
    ("{account}", "uses {account}"),
    ("{account_name.__class__}", "uses {account_name.__class__}"),
    ("{role_name!r}", "uses {role_name}"),
    ("{role_name:>10}", "uses {role_name}"),
    ("static", "no placeholder"),
    ("{unclosed", "not valid"),
])
def test_bad_templates_are_refused_with_the_reason(template: str, problem: str) -> None:
    with pytest.raises(ValueError, match=r"placeholder|not valid") as info:
        check_template(template)
    assert problem in str(info.value)


def test_every_placeholder() -> None:
    template = "{session}-{account_id}-{account_name}-{role_name}-{region}-{account_email}"
    check_template(template)
    assert profile_name(template, DEV, "eu-west-1") == (
        "corp-111111111111-Development-AdministratorAccess-eu-west-1-dev-example.com"
    )


def test_colliding_names_get_the_account_id() -> None:
    a = Target("corp", "111111111111", "dev", "Admin")
    b = Target("corp", "222222222222", "dev", "Admin")
    c = Target("corp", "333333333333", "prod", "Admin")
    names = assign_names("{account_name}.{role_name}", [b, a, c])
    assert names == {"dev.Admin-111111111111": a, "dev.Admin-222222222222": b, "prod.Admin": c}


def test_profile_values_quote_for_the_shell() -> None:
    odd = Target("my corp", "111111111111", "x", "Role")
    values = profile_values("/opt/my tools/ssocred", odd, region="eu-west-1", output="json")
    assert values["credential_process"] == (
        "/opt/my tools/ssocred process --sso-session 'my corp' --account-id 111111111111 --role-name Role"
    )
    assert list(values) == ["credential_process", "ssocred_managed", "region", "output"]


def _desired(targets: list[Target]) -> dict[str, tuple[Target, dict[str, str]]]:
    names = assign_names("{account_name}.{role_name}", targets)
    return {n: (t, dict(profile_values("ssocred", t, region="us-east-1"))) for n, t in names.items()}


def test_other_sessions_profiles_are_never_pruned() -> None:
    other = Target("other", "999999999999", "Else", "Admin")
    text, _ = populate_text("", "c", "other", _desired([other]), prune=False)
    text, changes = populate_text(text, "c", "corp", _desired([DEV]), prune=True)
    assert changes.removed == [] and changes.added == ["Development.AdministratorAccess"]
    updater = ConfigUpdater()
    updater.read_string(text)
    assert {m.session for m in managed_profiles(updater)} == {"other", "corp"}


def test_sso_session_is_updated_in_place() -> None:
    text = "# keep\n[sso-session corp]\nsso_start_url = old ; note\nsso_region = us-east-1\n\n[profile x]\nregion = a\n"
    out = sso_session_text(text, "c", "corp", {"sso_start_url": "https://new", "sso_region": "us-east-1"})
    assert out == text.replace("old ; note", "https://new")
    added = sso_session_text("[default]\nregion = a", "c", "new", {"sso_region": "eu-west-1"})
    assert added == "[default]\nregion = a\n\n[sso-session new]\nsso_region = eu-west-1\n"


_words = st.text(alphabet="abcdefghij_-", min_size=1, max_size=8)
_comment = st.builds(lambda w: f"# {w}\n", st.text(alphabet="abc ;#=[]xyz", max_size=20))
_section = st.tuples(_words, st.lists(st.tuples(_words, _words), max_size=3, unique_by=lambda kv: kv[0]), _comment)


@settings(max_examples=60, deadline=None)
@given(st.lists(_section, max_size=5, unique_by=lambda s: s[0]), st.booleans())
def test_user_text_is_a_prefix_and_a_second_run_changes_nothing(
    sections: list[tuple[str, list[tuple[str, str]], str]], trailing_blank: bool
) -> None:
    blank = "\n" if trailing_blank else ""
    user = "".join(c + f"[profile {n}]\n" + "".join(f"{k} = {v}\n" for k, v in keys) + blank for n, keys, c in sections)
    targets = [DEV, Target("corp", "222222222222", "Production", "ReadOnlyAccess")]
    once, changes = populate_text(user, "c", "corp", _desired(targets), prune=True)
    assert once.startswith(user)
    assert len(changes.added) == 2
    parser = configparser.RawConfigParser()
    parser.read_string(once)
    assert parser.get("profile Production.ReadOnlyAccess", "ssocred_managed") == "corp"
    twice, again = populate_text(once, "c", "corp", _desired(targets), prune=True)
    assert twice == once and again.added == [] and again.removed == [] and len(again.unchanged) == 2
