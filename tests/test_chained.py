"""Chained roles: a profile with ``role_arn`` and ``source_profile`` whose source is an ssocred profile.

The model tests read config text only; the others run the real ``ssocred`` command, real boto3
and the daemon against the emulator's STS AssumeRole over HTTP, and count its calls.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from ssocred.errors import EXIT_ACCESS_DENIED, EXIT_CONFIG, ConfigError
from ssocred.model.chain import Chain, Link, chain_from_dict, chain_to_dict, is_chained, resolve, target_key
from ssocred.model.config import SsoTarget, parse
from tests.support.cli import ACCOUNT, ROLE, login, process_profile, run, session_config, ssocred_line, write_config
from tests.support.daemon import daemons, start_daemon
from tests.support.emulator import RunningEmulator, sts_client

__all__ = ["daemons"]

DEPLOY = "arn:aws:iam::222233334444:role/Deploy"
AUDIT = "arn:aws:iam::333344445555:role/team/Audit"
SOURCE = SsoTarget("corp", ACCOUNT, ROLE)


def _config(extra: str = "") -> str:
    return (session_config("corp") + process_profile("dev", ACCOUNT, ROLE)
            + f"[profile chained]\nrole_arn = {DEPLOY}\nsource_profile = dev\nrole_session_name = ci-bot\n"
            + "region = eu-west-1\n"
            + f"[profile chained-cached]\ncredential_process = {ssocred_line()} process --profile chained\n"
            + f"[profile audit]\nrole_arn = {AUDIT}\nsource_profile = chained\nexternal_id = ext-42\n"
            + "duration_seconds = 900\n" + extra)


# --- the model: how a profile resolves -----------------------------------------------------------


def test_a_profile_with_role_arn_resolves_to_a_chain_from_its_ssocred_source() -> None:
    cfg = parse(_config())
    chain = resolve(cfg, "chained")
    assert chain == Chain(SOURCE, (Link("chained", DEPLOY, "ci-bot", None, None, "eu-west-1"),))
    assert resolve(cfg, "dev") == SOURCE
    # A second profile whose line names the chained profile serves the same chain (and cache).
    assert resolve(cfg, "chained-cached") == chain
    session, account, role = target_key(chain)
    assert (session, account) == ("corp", "222233334444") and role.startswith("Deploy~")
    assert is_chained(target_key(chain))
    assert not is_chained(target_key(SOURCE))


def test_a_chain_may_start_at_another_chain_and_keys_differ_per_step() -> None:
    cfg = parse(_config())
    audit = resolve(cfg, "audit")
    assert isinstance(audit, Chain)
    assert audit.source == SOURCE
    assert [link.role_arn for link in audit.links] == [DEPLOY, AUDIT]
    assert audit.last == Link("audit", AUDIT, "ssocred", "ext-42", 900, "eu-west-1")  # region from its source
    assert audit.parent() == resolve(cfg, "chained")
    assert audit.last.role_name == "Audit" and audit.last.account_id == "333344445555"
    other = parse(_config().replace("external_id = ext-42", "external_id = ext-43"))
    assert target_key(resolve(other, "audit")) != target_key(audit)
    assert chain_from_dict(json.loads(json.dumps(chain_to_dict(audit)))) == audit


def test_the_region_falls_back_to_the_source_then_the_sso_region() -> None:
    text = session_config("corp") + process_profile("dev", ACCOUNT, ROLE).replace("region = us-east-1\n", "")
    cfg = parse(text + f"[profile c]\nrole_arn = {DEPLOY}\nsource_profile = dev\n")
    chain = resolve(cfg, "c")
    assert isinstance(chain, Chain) and chain.last.region == "us-east-1"  # the SSO region of corp
    cfg = parse(text.replace("[profile dev]\n", "[profile dev]\nregion = ap-south-1\n")
                + f"[profile c]\nrole_arn = {DEPLOY}\nsource_profile = dev\n")
    chain = resolve(cfg, "c")
    assert isinstance(chain, Chain) and chain.last.region == "ap-south-1"


@pytest.mark.parametrize(("extra", "profile", "says", "fix"), [
    (f"[profile m]\nrole_arn = {DEPLOY}\nsource_profile = dev\nmfa_serial = arn:aws:iam::1:mfa/me\n", "m",
     "sets mfa_serial: ssocred cannot ask for an MFA code", "remove mfa_serial"),
    (f"[profile n]\nrole_arn = {DEPLOY}\n", "n", "has role_arn but no source_profile", "add source_profile"),
    (f"[profile n]\nrole_arn = {DEPLOY}\nsource_profile = nope\n", "n", "source_profile = nope in [profile n]",
     "defined profiles"),
    (f"[profile plain]\nregion = eu-west-1\n[profile n]\nrole_arn = {DEPLOY}\nsource_profile = plain\n", "n",
     "source_profile = plain in [profile n] of", "add ssocred_session"),
    (f"[profile a]\nrole_arn = {DEPLOY}\nsource_profile = b\n[profile b]\nrole_arn = {AUDIT}\nsource_profile = a\n",
     "a", "form a cycle: [profile a] -> [profile b] -> [profile a]", "make the last source_profile"),
    (f"[profile s]\nrole_arn = {DEPLOY}\nsource_profile = s\n", "s", "form a cycle", "make the last source_profile"),
    (f"[profile d]\nrole_arn = {DEPLOY}\nsource_profile = dev\nduration_seconds = 7200\n", "d",
     "duration_seconds = 7200 in [profile d]", "between 900 and 3600"),
    ("[profile r]\nrole_arn = arn:aws:iam::12:role/X\nsource_profile = dev\n", "r", "is not a role ARN",
     "arn:aws:iam::222233334444:role/NAME"),
    (f"[profile e]\nrole_arn = {DEPLOY}\nsource_profile = dev\nexternal_id = a b\n", "e",
     "external_id in [profile e]", "letters, digits"),
    (f"[profile q]\nrole_arn = {DEPLOY}\nsource_profile = dev\nrole_session_name = x\n", "q",
     "role_session_name = x", "2 to 64"),
    (f"[profile q]\nrole_arn = {DEPLOY}\ncredential_source = Environment\n", "q", "sets credential_source",
     "source_profile"),
])
def test_unusable_chains_are_config_errors_naming_the_fix(extra: str, profile: str, says: str, fix: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve(parse(_config(extra)), profile)
    assert says in info.value.message
    assert info.value.fix is not None and fix in info.value.fix
    assert info.value.exit_code == EXIT_CONFIG


# --- the commands, against the emulator ----------------------------------------------------------


@pytest.fixture
def chained(sso: RunningEmulator) -> RunningEmulator:
    write_config(_config())
    login(sso)
    return sso


def _identity(url: str, out: dict[str, Any]) -> dict[str, Any]:
    keys = {"accessKeyId": out["AccessKeyId"], "secretAccessKey": out["SecretAccessKey"],
            "sessionToken": out["SessionToken"]}
    result: dict[str, Any] = sts_client(url, keys).get_caller_identity()
    return result


@pytest.mark.slow
def test_env_gives_the_chained_identity_and_a_second_call_uses_the_cache(chained: RunningEmulator) -> None:
    first = run("env", "--profile", "chained", "--format", "process")
    assert first.returncode == 0, first.stderr
    out = json.loads(first.stdout)
    identity = _identity(chained.url, out)
    assert identity["Account"] == "222233334444"
    assert identity["Arn"] == "arn:aws:sts::222233334444:assumed-role/Deploy/ci-bot"
    again = run("env", "--profile", "chained", "--format", "process")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["AccessKeyId"] == out["AccessKeyId"]
    ops = chained.stats()["operations"]
    assert (ops["AssumeRole"], ops["GetRoleCredentials"]) == (1, 1)
    # process answers from the same cache, without the daemon too.
    proc = run("process", "--profile", "chained")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["AccessKeyId"] == out["AccessKeyId"]
    assert chained.stats()["operations"]["AssumeRole"] == 1


@pytest.mark.slow
def test_a_chain_of_two_steps_and_exec(chained: RunningEmulator) -> None:
    code = ("import json, os; print(json.dumps({k: os.environ.get(k) for k in ('AWS_ACCESS_KEY_ID', "
            "'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_REGION', 'AWS_PROFILE')}))")
    r = run("exec", "--profile", "audit", "--", sys.executable, "-c", code,
            env={**os.environ, "AWS_PROFILE": "dev"})
    assert r.returncode == 0, r.stderr
    seen = json.loads(r.stdout)
    assert seen["AWS_PROFILE"] is None and seen["AWS_REGION"] == "eu-west-1"
    identity = _identity(chained.url, {"AccessKeyId": seen["AWS_ACCESS_KEY_ID"],
                                       "SecretAccessKey": seen["AWS_SECRET_ACCESS_KEY"],
                                       "SessionToken": seen["AWS_SESSION_TOKEN"]})
    assert identity["Arn"] == "arn:aws:sts::333344445555:assumed-role/Audit/ssocred"
    assert chained.stats()["operations"]["AssumeRole"] == 2  # Deploy, then Audit signed by Deploy
    # The first step is cached on its own: the chained profile needs no further AssumeRole.
    assert run("env", "--profile", "chained").returncode == 0
    assert chained.stats()["operations"]["AssumeRole"] == 2


_BOTO3 = """
import json, sys, boto3
s = boto3.Session(profile_name=sys.argv[1], region_name="us-east-1")
print(json.dumps([s.client("sts").get_caller_identity()["Arn"], s.get_credentials().method]))
"""


@pytest.mark.slow
def test_real_boto3_both_ways(chained: RunningEmulator) -> None:
    def boto3_run(profile: str) -> list[str]:
        r = subprocess.run([sys.executable, "-c", _BOTO3, profile], capture_output=True, text=True, timeout=120,
                           check=False)
        assert r.returncode == 0, r.stderr
        answer: list[str] = json.loads(r.stdout)
        return answer

    arn = "arn:aws:sts::222233334444:assumed-role/Deploy/ci-bot"
    # botocore's own AssumeRole provider, signed with the source profile's ssocred credentials.
    assert boto3_run("chained") == [arn, "assume-role"]
    assert chained.stats()["operations"]["AssumeRole"] == 1
    # ssocred's AssumeRole and cache, through credential_process: twice, one AssumeRole.
    assert boto3_run("chained-cached") == [arn, "custom-process"]
    assert boto3_run("chained-cached") == [arn, "custom-process"]
    ops = chained.stats()["operations"]
    assert (ops["AssumeRole"], ops["GetRoleCredentials"]) == (2, 1)


@pytest.mark.slow
def test_console_signs_in_with_the_chained_role(chained: RunningEmulator) -> None:
    from tests.test_console import _get

    r = run("console", "--profile", "chained", "--print", env={**os.environ, "AWS_ENDPOINT_URL_SIGNIN": chained.url})
    assert r.returncode == 0, r.stderr
    url = r.stdout.strip()
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(f"{chained.url}/federation?")
    assert query["Destination"] == ["https://eu-west-1.console.aws.amazon.com/console/home?region=eu-west-1"]
    assert _get(url) == (302, query["Destination"][0])
    assert chained.stats()["operations"]["AssumeRole"] == 1


@pytest.mark.slow
def test_access_denied_and_refused_profiles_are_one_line(chained: RunningEmulator) -> None:
    chained.control(deny_assume_role=[DEPLOY])
    r = run("process", "--profile", "chained")
    assert r.returncode == EXIT_ACCESS_DENIED, r.stderr
    assert r.stdout == "" and len(r.stderr.splitlines()) == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"ssocred: STS refused AssumeRole of {DEPLOY} for [profile chained]: User: ")
    assert "ASIA" not in r.stderr.replace("ASIA[", "")
    write_config(_config(f"[profile m]\nrole_arn = {DEPLOY}\nsource_profile = dev\nmfa_serial = arn:x\n"))
    r = run("env", "--profile", "m")
    assert r.returncode == EXIT_CONFIG and len(r.stderr.splitlines()) == 1
    assert "sets mfa_serial" in r.stderr


@pytest.mark.slow
def test_expiry_and_the_daemons_refetch_use_the_clock_and_the_stored_chain(chained: RunningEmulator) -> None:
    from ssocred.adapters import config_file
    from ssocred.adapters.store import Store
    from ssocred.usecases import chain as usecase

    store = Store()
    target = resolve(config_file.load(), "chained")
    assert isinstance(target, Chain)
    first = usecase.credentials_for(store, target)
    assert usecase.credentials_for(store, target, clock=lambda: time.time() + 600).access_key_id == first.access_key_id
    later = usecase.credentials_for(store, target, clock=lambda: time.time() + 3000)  # inside botocore's window
    assert later.access_key_id != first.access_key_id
    assert chained.stats()["operations"]["AssumeRole"] == 2
    # The daemon's pre-fetch knows only the key: the chain and the endpoint come from the cached item.
    key = target.key()
    again = usecase.refetch(store, key)
    assert again.access_key_id not in (first.access_key_id, later.access_key_id)
    assert again.account_id == "222233334444" and again.role_name == "Deploy"
    assert store.load_creds(*key) == again
    assert chained.stats()["operations"]["AssumeRole"] == 3
    from ssocred.process_args import Request

    assert usecase.credentials_for(store, usecase.target_for(Request(profile="chained-cached"))[0]) == again


@pytest.mark.slow
def test_the_daemon_answers_chained_profiles_and_pre_fetches_them(chained: RunningEmulator, tmp_path: Path,
                                                                   daemons: list[Any]) -> None:
    chained.control(cred_ttl=40)  # the chained credentials end soon: the daemon fetches them again
    d = start_daemon(daemons, tmp_path, "--verbose", "--scan-interval", "1")
    r = run("process", "--profile", "chained")
    assert r.returncode == 0, r.stderr
    key = json.loads(r.stdout)["AccessKeyId"]
    assert "answered corp 222233334444 Deploy~" in d.log_text(), d.diagnostics()
    line = re.compile(r"role Deploy~\w+ in 222233334444 \(session corp\): pre-fetched (ASIA\w+)")
    deadline = time.time() + 60
    while time.time() < deadline and not line.search(d.log_text()):
        time.sleep(0.5)
    assert line.search(d.log_text()), d.diagnostics()
    r = run("process", "--profile", "chained")
    assert r.returncode == 0, r.stderr
    # The answer is a key the daemon pre-fetched, not one the caller had to fetch.
    assert json.loads(r.stdout)["AccessKeyId"] in set(line.findall(d.log_text())) - {key}
    assert d.stop() == 0, d.diagnostics()


@pytest.mark.slow
def test_the_sts_endpoint_of_the_profiles_services_section_is_used(sso: RunningEmulator) -> None:
    services = f"services = local\n[services local]\nsts =\n  endpoint_url = {sso.url}\n"
    write_config(_config().replace("region = eu-west-1\n", "region = eu-west-1\n" + services, 1))
    login(sso)
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL_STS"}
    r = run("env", "--profile", "chained", "--format", "process", env=env)
    assert r.returncode == 0, r.stderr
    assert _identity(sso.url, json.loads(r.stdout))["Account"] == "222233334444"
    assert sso.stats()["operations"]["AssumeRole"] == 1
    # Without it, the regional STS of eu-west-1 would be asked, which this test cannot reach.
    write_config(_config())
    r = run("env", "--profile", "audit", env={**env, "SSOCRED_TIMEOUT": "3", "HTTPS_PROXY": "http://127.0.0.1:9"})
    assert r.returncode == 5, r.stderr
    assert "sts.eu-west-1.amazonaws.com" in r.stderr


class _Refused(Exception):
    def __init__(self, body: str) -> None:
        self.response = {"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403},
                         "SsocredBody": body}


def test_an_xml_answer_is_sts_own_but_foreign_for_json_services() -> None:
    from ssocred.adapters import aws

    assert aws.body_kind({"content-type": "text/xml"}, b"<ErrorResponse xmlns='x'>") == "xml"
    assert aws.foreign_answer(_Refused("xml"), "sts") is None
    refused = aws.foreign_answer(_Refused("xml"), "sso")
    assert refused is not None and "answered HTTP 403 with XML, not an AWS answer" in refused.message
    page = aws.foreign_answer(_Refused("html"), "sts")
    assert page is not None and page.message.startswith("STS answered HTTP 403 with an HTML page")


def _doctor(profile: str) -> tuple[int, dict[str, dict[str, Any]]]:
    r = run("doctor", "--profile", profile, "--json")
    data = json.loads(r.stdout)
    assert data["exit_code"] == r.returncode
    return r.returncode, {c["id"]: c for c in data["checks"]}


@pytest.mark.slow
def test_doctor_checks_the_chain_its_source_and_the_assume_role(chained: RunningEmulator) -> None:
    code, checks = _doctor("chained")
    assert checks["config"]["status"] == "pass", checks["config"]
    assert checks["config"]["summary"].startswith(
        f"profile 'chained' assumes Deploy in 222233334444 (STS in eu-west-1) with the credentials of {ROLE} "
        f"in {ACCOUNT}, sso-session 'corp'")
    assert checks["routing"]["status"] == "pass"
    assert checks["routing"]["summary"].startswith(
        "botocore assumes the role of [profile chained] itself, with the credentials of [profile dev]: "
        "credential_process runs ssocred process")
    assert checks["token"]["status"] == "pass" and checks["access"]["status"] == "pass", checks
    assert checks["access"]["summary"].startswith(
        f"role {ROLE} is assigned to you in account {ACCOUNT}; assuming {DEPLOY} works (credentials until ")
    assert code == 0
    # Through a credential_process line that names the chained profile, ssocred does the AssumeRole.
    code, checks = _doctor("chained-cached")
    assert checks["config"]["summary"].startswith("profile 'chained-cached' assumes Deploy in 222233334444")
    assert checks["routing"]["status"] == "pass" and checks["access"]["status"] == "pass", checks
    # A role that refuses the AssumeRole fails access with exit 4; a chain ssocred cannot use fails config.
    chained.control(deny_assume_role=[DEPLOY])
    _drop = run("logout", "--sso-session", "corp")  # the cached chained credentials go with the session
    assert _drop.returncode == 0
    login(chained)
    code, checks = _doctor("chained")
    assert code == EXIT_ACCESS_DENIED and checks["access"]["status"] == "fail", checks
    assert f"assuming {DEPLOY} failed: STS refused AssumeRole" in checks["access"]["summary"]
    write_config(_config(f"[profile m]\nrole_arn = {DEPLOY}\nsource_profile = dev\nmfa_serial = arn:x\n"))
    code, checks = _doctor("m")
    assert code == EXIT_CONFIG and checks["config"]["status"] == "fail" and "mfa_serial" in checks["config"]["summary"]


@pytest.mark.slow
def test_status_names_chained_credentials_by_their_role(chained: RunningEmulator) -> None:
    assert run("env", "--profile", "chained").returncode == 0
    data = json.loads(run("status", "--json").stdout)
    creds = {(c["account_id"], c["role_name"], c["chained"]) for c in data["sessions"][0]["credentials"]}
    assert ("222233334444", "Deploy", True) in creds and (ACCOUNT, ROLE, False) in creds, creds
    text = run("status").stdout
    assert "  222233334444 Deploy (assumed through a chain): credentials valid for " in text and "Deploy~" not in text
