"""Properties of the config model: no crash on any text, botocore's reading, round trips."""

from __future__ import annotations

import locale
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ssocred.adapters.config_file import load
from ssocred.errors import ConfigError
from ssocred.model import sso as model
from ssocred.model.config import AwsConfig, ResolvedSso, SsoTarget, parse, parse_nested

URL = "https://d-1234567890.awsapps.com/start"
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
QUICK = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- INI-ish text: mostly well-formed lines over a small vocabulary, so references match ---

NAMES = st.sampled_from(["dev", "prod", "corp", "default", '"a b"', "x y", "'q", ""])
KEYS = st.sampled_from(
    [
        "sso_session",
        "sso_start_url",
        "sso_region",
        "sso_account_id",
        "sso_role_name",
        "sso_registration_scopes",
        "region",
        "Region",
        "credential_process",
        "ssocred_session",
        "ssocred_account_id",
        "ssocred_role_name",
        "s3",
    ]
)
ODD = st.text(alphabet="[]=:#;\"' \t\r\n\x0b\u2028\ufeffaé-_,", max_size=12)
VALUES = st.one_of(
    st.sampled_from(
        [
            "corp",
            "dev",
            URL,
            "us-east-1",
            "eu-west-1",
            "111122223333",
            "R",
            "a, b,",
            "",
            "ssocred process --sso-session corp --account-id 1 --role-name R",
            "ssocred process --account-id=2 --role-name=S",
            "ssocred process --account-id",
            "x 'y",
        ]
    ),
    ODD,
)
HEADERS = st.one_of(
    st.builds(
        lambda kind, name: f"[{kind}{name}]",
        st.sampled_from(["profile ", "sso-session ", "services ", ""]),
        NAMES,
    ),
    st.sampled_from(["[default]", "[DEFAULT]", "[profile]", "[]", "[profilex dev]", "[sso-session]"]),
)
LINES = st.one_of(
    HEADERS,
    st.builds(lambda k, sep, v: f"{k}{sep}{v}", KEYS, st.sampled_from([" = ", "=", ": ", " =\n  "]), VALUES),
    st.builds(lambda k, v: f"  {k} = {v}", KEYS, VALUES),
    st.sampled_from(["# comment", "; comment", "", "  junk", "junk"]),
    ODD,
)
INI_ISH = st.one_of(st.lists(LINES, max_size=25).map("\n".join), st.text(max_size=200))


def one_line(exc: ConfigError) -> None:
    assert len(exc.line().splitlines()) == 1


def exercise(cfg: AwsConfig) -> None:
    """Every lookup on every name returns its type or raises ConfigError with a one-line message."""
    for name in cfg.profiles:
        try:
            resolved = cfg.resolve_sso(name)
        except ConfigError as exc:
            one_line(exc)
        else:
            assert isinstance(resolved, ResolvedSso)
            assert resolved.start_url and resolved.region and "\n" not in resolved.region
            assert resolved.legacy or resolved.session_name in cfg.sso_sessions
            assert resolved.cache_key
        try:
            target = cfg.ssocred_target(name)
        except ConfigError as exc:
            one_line(exc)
        else:
            assert isinstance(target, SsoTarget)
            assert target.session and target.account_id and target.role_name
    for name in cfg.sso_sessions:
        try:
            assert isinstance(cfg.resolve_session(name), ResolvedSso)
        except ConfigError as exc:
            one_line(exc)
    for name in ("nope", "dev", "corp"):
        for lookup in (cfg.profile, cfg.sso_session):
            try:
                lookup(name)
            except ConfigError as exc:
                one_line(exc)


@FAST
@given(INI_ISH)
def test_parse_never_crashes(text: str) -> None:
    try:
        cfg = parse(text)
    except ConfigError as exc:
        one_line(exc)
        return
    assert isinstance(cfg, AwsConfig)
    exercise(cfg)


# --- the same reading as botocore -------------------------------------------------------


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("config") / "config"


def botocore_sso(full: dict[str, object], name: str) -> dict[str, str]:
    from botocore.credentials import SSOProvider

    make: Any = SSOProvider  # only the config half is used: no client, no token cache on disk
    return dict(make(lambda: full, None, name, cache={}, token_cache={})._load_sso_config())


@pytest.mark.slow
@pytest.mark.skipif(
    locale.getpreferredencoding(False).lower() not in ("utf-8", "utf8"), reason="non-UTF-8 locale"
)
@FAST
@given(INI_ISH)
def test_reads_like_botocore(scratch: Path, text: str) -> None:
    import botocore.configloader
    import botocore.exceptions

    data = text.encode("utf-8", "surrogatepass")
    scratch.write_bytes(data)
    try:
        theirs = botocore.configloader.load_config(str(scratch))
    except (botocore.exceptions.ConfigParseError, UnicodeDecodeError):
        with pytest.raises(ConfigError):
            load(scratch)
        return
    ours = load(scratch)
    assert list(ours.profiles) == list(theirs["profiles"])
    assert list(ours.sso_sessions) == list(theirs["sso_sessions"])
    assert list(ours.services) == list(theirs["services"])
    for name, profile in ours.profiles.items():
        raw = profile.values
        assert {k: parse_nested(v) if v.startswith("\n") else v for k, v in raw.items()} == theirs[
            "profiles"
        ][name]
        if "sso_account_id" not in raw or "sso_role_name" not in raw:
            continue
        # With account and role on the profile, botocore's SSO provider fails where we do;
        # where both succeed they agree.
        try:
            expected = botocore_sso(theirs, name)
        except botocore.exceptions.InvalidConfigError:
            with pytest.raises(ConfigError):
                ours.resolve_sso(name)
            continue
        try:
            got = ours.resolve_sso(name)
        except ConfigError:
            continue  # stricter: sso_start_url / sso_region must be in the sso-session itself
        assert (got.start_url, got.region) == (expected["sso_start_url"], expected["sso_region"])
        assert (got.account_id, got.role_name) == (expected["sso_account_id"], expected["sso_role_name"])
        assert got.session_name == expected.get("sso_session")


# --- round trip of generated well-formed configs ----------------------------------------

NAME = st.text(alphabet=string.ascii_letters + string.digits + "_.-", min_size=1, max_size=12)
KEY = st.text(alphabet=string.ascii_lowercase + string.digits + "_", min_size=1, max_size=12)
TEXT = st.text(
    alphabet=st.characters(max_codepoint=0x3000, exclude_categories=("Cc", "Cs", "Zl", "Zp")), max_size=20
).map(str.strip)
VALUE = TEXT.filter(lambda v: not v.startswith(("[", "#", ";")))
NESTED = st.dictionaries(KEY, VALUE.filter(lambda v: "=" not in v), min_size=1, max_size=3)
SCOPE = st.text(alphabet=string.ascii_lowercase + ":_", min_size=1, max_size=20)
SESSION = st.tuples(st.just(URL) | TEXT.filter(bool), NAME, st.none() | st.lists(SCOPE, max_size=3))


def render(
    sessions: dict[str, tuple[str, str, list[str] | None]], profiles: dict[str, dict[str, object]]
) -> str:
    out: list[str] = []
    for name, values in profiles.items():
        out.append("[default]" if name == "default" else f"[profile {name}]")
        for key, value in values.items():
            if isinstance(value, dict):
                out.append(f"{key} =")
                out.extend(f"    {k} = {v}" for k, v in value.items())
            else:
                out.append(f"{key} = {value}")
        out.append("")
    for name, (url, region, scopes) in sessions.items():
        out += [f"[sso-session {name}]", f"sso_start_url = {url}", f"sso_region = {region}"]
        if scopes is not None:
            out.append("sso_registration_scopes = " + ", ".join(scopes) + ",")
        out.append("# end")
    return "\n".join(out) + "\n"


@pytest.mark.slow
@QUICK
@given(
    st.dictionaries(NAME, SESSION, max_size=3),
    st.dictionaries(NAME | st.just("default"), st.dictionaries(KEY, VALUE | NESTED, max_size=5), max_size=4),
)
def test_round_trip(
    sessions: dict[str, tuple[str, str, list[str] | None]], profiles: dict[str, dict[str, object]]
) -> None:
    cfg = parse(render(sessions, profiles))
    assert list(cfg.profiles) == list(profiles)
    for name, values in profiles.items():
        got = cfg.profile(name).values
        assert list(got) == list(values)
        for key, value in values.items():
            assert (parse_nested(got[key]) if isinstance(value, dict) else got[key]) == value
    assert list(cfg.sso_sessions) == list(sessions)
    for name, (url, region, scopes) in sessions.items():
        session = cfg.sso_session(name)
        assert (session.start_url, session.region) == (url, region)
        assert session.registration_scopes == tuple(scopes or ())
        assert session.scopes_configured == (scopes is not None)
        assert cfg.resolve_session(name) == ResolvedSso(
            name, url, region, tuple(scopes or ()) or model.DEFAULT_SCOPES, scopes is not None
        )


@QUICK
@given(
    NAME,
    st.tuples(st.just(URL), NAME, st.none() | st.lists(SCOPE, max_size=3)),
    st.text(alphabet=string.digits, min_size=12, max_size=12),
    NAME,
    st.sampled_from(["keys", "line", "equals"]),
)
def test_generated_ssocred_profiles_resolve(
    session: str, settings_: tuple[str, str, list[str] | None], account: str, role: str, style: str
) -> None:
    if style == "keys":
        values: dict[str, object] = {
            "ssocred_session": session,
            "ssocred_account_id": account,
            "ssocred_role_name": role,
            "credential_process": "ssocred process --profile p",
        }
    else:

        def flag(name: str, value: str) -> str:
            # argparse reads "--flag -x" as a missing value, so such values need "--flag=-x".
            sep = " " if style == "line" and not value.startswith("-") else "="
            return f"--{name}{sep}{value}"

        flags = f"{flag('sso-session', session)} {flag('account-id', account)} {flag('role-name', role)}"
        values = {"sso_session": session, "credential_process": f"ssocred process {flags}"}
    cfg = parse(render({session: settings_}, {"p": values}))
    assert cfg.ssocred_target("p") == SsoTarget(session, account, role)
    resolved = cfg.resolve_session(cfg.ssocred_target("p").session)
    assert (resolved.start_url, resolved.region) == settings_[:2]
    if style != "keys":
        assert cfg.resolve_sso("p") == resolved
