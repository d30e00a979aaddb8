"""The one ``ssocred process`` grammar: parse, read a credential_process line, write one; and its readers agree."""

from __future__ import annotations

import shlex
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ssocred import process_args
from ssocred.errors import UsageError
from ssocred.process import client
from ssocred.process_args import Request, build, from_line, parse, to_argv, to_line

ACCOUNT = "111122223333"
TARGET = ["--sso-session", "corp", "--account-id", ACCOUNT]
PROPERTY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize(
    ("argv", "request_"),
    [
        (["--profile", "dev"], Request(profile="dev")),
        (["--profile=dev", "--login"], Request(profile="dev", login=True)),
        ([*TARGET, "--role-name", "Admin"], Request(session="corp", account=ACCOUNT, role="Admin")),
        ([*TARGET, "--role-name=-Admin"], Request(session="corp", account=ACCOUNT, role="-Admin")),
        ([*TARGET, "--role-name==x y"], Request(session="corp", account=ACCOUNT, role="=x y")),
        (["--login", "--role-name", "R", *TARGET], Request(session="corp", account=ACCOUNT, role="R", login=True)),
        (["--profile", "dev", "--help"], Request(help=True)),
        (["-h"], Request(help=True)),
    ],
)
def test_parse(argv: list[str], request_: Request) -> None:
    assert parse(argv) == request_


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        # The rows of ARCHITECTURE-REVIEW 4a, and the cases of issue 14 items 7 and 11.
        ([*TARGET, "--role-name", "-Admin"], "--role-name needs a value; write --role-name=VALUE for a value that"),
        ([*TARGET, "--role-name", "--login"], "--role-name needs a value"),
        (["--profile", "dev", "--"], "unknown argument '--' for ssocred process"),
        ([*TARGET, "--role-name", "ReadOnly", "--role-name", "Admin"], "--role-name is given more than once"),
        (["--profile=a", "--profile", "b"], "--profile is given more than once"),
        (["--profile", "dev", "--login", "--login"], "--login is given more than once"),
        (["--profile", "dev", "--login=yes"], "--login takes no value"),
        ([*TARGET, "--role-name", ""], "--role-name is empty"),
        (["--profile="], "--profile is empty"),
        (["--sso-session", "corp", "--account-id", "12345", "--role-name", "R"], "--account-id '12345' is not an"),
        (["--sso-session", "corp", "--account-id", "abcdefghijkl", "--role-name", "R"], "--account-id 'abcdef"),
        (["--sso-session", "corp", "--account-id", "１１１１２２２２３３３３", "--role-name", "R"], "--account-id '１"),
        (["--profile", "dev", "--role-name", "R"], "--profile cannot be combined"),
        (["--sso-session", "corp"], "ssocred process needs --account-id, --role-name (or --profile)"),
        ([], "ssocred process needs --sso-session, --account-id, --role-name (or --profile)"),
        (["--bogus"], "unknown argument '--bogus'"),
        (["--role"], "unknown argument '--role'"),  # no abbreviations
        (["--profile"], "--profile needs a value"),
        (["--profile", "dev", "extra"], "unknown argument 'extra'"),
        (["--profile", "a\nb", "x\ny"], "unknown argument 'x\\ny'"),
    ],
)
def test_refused(argv: list[str], problem: str) -> None:
    with pytest.raises(UsageError) as info:
        parse(argv)
    assert info.value.exit_code == 2
    assert info.value.line().startswith(problem)
    assert len(info.value.line().splitlines()) == 1


def test_messages_name_the_command() -> None:
    with pytest.raises(UsageError) as info:
        parse(["--sso-session", "corp"], prog="ssocred exec")
    assert info.value.line() == "ssocred exec needs --account-id, --role-name (or --profile); see: ssocred exec --help"
    with pytest.raises(UsageError) as info:
        build(role="", prog="ssocred env")
    assert "ssocred env --help" in info.value.line() and "process" not in info.value.line()


def test_usage_lists_every_option() -> None:
    for flag in (*process_args.VALUE_FLAGS, "--login", "--help"):
        assert f"  {flag}" in process_args.USAGE or f", {flag}" in process_args.USAGE
    assert process_args.USAGE.startswith("usage: ssocred process (--profile P | --sso-session S --account-id A")


@pytest.mark.parametrize(
    ("line", "request_"),
    [
        ("ssocred process --profile dev", Request(profile="dev")),
        ("/usr/local/bin/ssocred process --profile=dev --login", Request(profile="dev", login=True)),
        ("python3 -m ssocred process --profile dev", Request(profile="dev")),
        ("'/opt/my tools/ssocred' process --profile dev", Request(profile="dev")),
        ("C:\\\\Tools\\\\ssocred.exe process --profile dev", Request(profile="dev")),
        (f"ssocred process --sso-session corp --account-id {ACCOUNT} --role-name=-Admin",
         Request(session="corp", account=ACCOUNT, role="-Admin")),
        ("aws-vault exec dev -- ssocred-like process --profile dev", None),
        ("my-helper --role-name R", None),
        ("", None),
    ],
)
def test_from_line(line: str, request_: Request | None) -> None:
    assert from_line(line) == request_


def test_from_line_refuses_what_process_refuses() -> None:
    with pytest.raises(UsageError, match="--role-name needs a value"):
        from_line(f"ssocred process --sso-session corp --account-id {ACCOUNT} --role-name --login")
    with pytest.raises(ValueError, match="No closing quotation"):
        from_line("ssocred process --profile 'dev")


def test_to_line_writes_what_populate_wrote() -> None:
    request = Request(session="my corp", account=ACCOUNT, role="Dev")
    assert to_line(request) == f"ssocred process --sso-session 'my corp' --account-id {ACCOUNT} --role-name Dev"
    assert to_line(Request(profile="-x", login=True), "/opt/ssocred") == "/opt/ssocred process --profile=-x --login"
    with pytest.raises(ValueError, match="line break"):
        to_line(Request(profile="a\nb"))
    with pytest.raises(ValueError, match="help"):
        to_argv(Request(help=True))


# --- properties: what is written is read back, by every reader ------------------------------------

#: Values a session, role or profile name could hold, and ones chosen to break quoting and parsing.
HOSTILE = st.text(alphabet=st.characters(blacklist_characters="\n\r\0"), min_size=1)
VALUES = st.one_of(
    st.sampled_from(["corp", "ReadOnlyAccess", "-Admin", "--login", "--", "-", "=", "a=b", "'", '"', "a b", "$(x)",
                     "`x`", "\\", "#x", ";", "--profile", "-h", "é", "\t", "\u2028", "x\x0by"]),
    HOSTILE,
)
ACCOUNTS = st.text(alphabet="0123456789", min_size=12, max_size=12)
REQUESTS = st.one_of(
    st.builds(lambda p, login: Request(profile=p, login=login), VALUES, st.booleans()),
    st.builds(lambda s, a, r, login: Request(session=s, account=a, role=r, login=login),
              VALUES, ACCOUNTS, VALUES, st.booleans()),
)
COMMANDS = st.sampled_from(["ssocred", "/usr/bin/ssocred", "'/opt/my tools/ssocred'", "python3 -m ssocred"])


@PROPERTY
@given(REQUESTS, COMMANDS)
def test_a_written_line_is_read_back(request_: Request, command: str) -> None:
    line = to_line(request_, command)
    assert parse(shlex.split(to_line(request_))[2:]) == request_
    assert parse(to_argv(request_)) == request_
    assert from_line(line) == request_


@PROPERTY
@given(REQUESTS)
def test_every_reader_agrees_on_a_written_request(request_: Request) -> None:
    argv = to_argv(request_)
    assert client.plain_arguments(argv)  # the hot path sends it to the daemon, which parses it with parse()
    rebuilt = build(request_.profile, request_.session, request_.account, request_.role, login=request_.login)
    assert rebuilt == request_  # env and exec, from argparse's values
    assert from_line(to_line(request_)) == request_  # config, populate --prune and doctor, from the line


ARGV = st.lists(st.one_of(VALUES, st.sampled_from([*process_args.VALUE_FLAGS, "--login", ACCOUNT, "-h"]),
                          st.builds(lambda f, v: f"{f}={v}", st.sampled_from(list(process_args.VALUE_FLAGS)), VALUES)),
                max_size=9)


@PROPERTY
@given(ARGV)
def test_any_argv_is_a_request_or_one_usage_line_and_the_fast_path_agrees(argv: list[str]) -> None:
    try:
        request_ = parse(argv)
    except UsageError as exc:
        assert exc.exit_code == 2 and len(exc.line().splitlines()) == 1
        assert not client.plain_arguments(argv)  # the full path refuses it, with this line
        return
    assert client.plain_arguments(argv) == (not request_.help)
    if not request_.help:
        assert parse(to_argv(request_)) == request_


def test_the_grammar_costs_the_hot_path_next_to_nothing() -> None:
    code = "import ssocred.process.client, sys; print(*sorted(m for m in sys.modules if m.startswith('ssocred')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    # process_args loads nothing at import: errors only to refuse arguments, shlex only for lines.
    assert out.split() == ["ssocred", "ssocred.process", "ssocred.process.client", "ssocred.process_args",
                           "ssocred.socket_protocol"]
    code = "import sys, ssocred.process_args as g; g.parse(['--profile', 'dev']); print('shlex' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"
