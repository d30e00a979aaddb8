"""``ssocred credentials-file``: role credentials exported to ``~/.aws/credentials``, kept fresh, removed on logout.

The text edits are checked on their own (other sections and comments survive byte for byte);
then the real command against the emulator, read back by real boto3 from the credentials file
alone, and the daemon rewriting the section when it pre-fetches new credentials.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ssocred.adapters.store import Store
from ssocred.errors import ConfigError
from ssocred.model import credentials_file as cf
from ssocred.model.sso import RoleCredentials, iso_z
from tests.support.cli import ACCOUNT, ROLE, login, process_profile, run, session_config, write_config
from tests.support.daemon import RunningDaemon, start_daemon
from tests.support.emulator import RunningEmulator

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN"


def _creds(key: str = "ASIAEXAMPLE000000001", expiration: float = 1_900_000_000.0) -> RoleCredentials:
    return RoleCredentials(key, SECRET, TOKEN, expiration, ACCOUNT, ROLE, expiration - 3600)


DEV = cf.Export("dev", "corp", ACCOUNT, ROLE)

OTHERS = [
    "",
    "[default]\naws_access_key_id = AKIAOTHER\naws_secret_access_key = other\n",
    "# my keys\n[default]\n; a comment\naws_access_key_id = AKIAOTHER\n\n\n[work]\nregion = x\n",
    "[default]\naws_access_key_id = AKIAOTHER\n\n# trailing comment\n",
]


# --- the text edits -----------------------------------------------------------------------------


def test_an_export_is_read_back_with_its_role_and_expiry() -> None:
    text = cf.put("", DEV, _creds())
    assert text.startswith("[dev]\n# ssocred-export ")
    assert f"aws_access_key_id = ASIAEXAMPLE000000001\naws_secret_access_key = {SECRET}\n" in text
    assert text.endswith(f"aws_session_token = {TOKEN}\n")
    [found] = cf.exports(text)
    assert found == DEV and found.role == ("corp", ACCOUNT, ROLE)
    assert found.expires == 1_900_000_000.0


@pytest.mark.parametrize("other", OTHERS)
def test_other_sections_and_comments_survive_byte_for_byte(other: str) -> None:
    written = cf.put(other, DEV, _creds())
    assert written.startswith(other)
    again = cf.put(written, DEV, _creds("ASIAEXAMPLE000000002", 1_900_003_600.0))
    assert again.count("[dev]") == 1 and "ASIAEXAMPLE000000002" in again and "ASIAEXAMPLE000000001" not in again
    assert cf.drop(again, {"dev"}) == other
    assert [e.name for e in cf.exports(again)] == ["dev"]


def test_a_section_in_the_middle_is_replaced_in_place() -> None:
    text = cf.put("[a]\nk = 1\n", DEV, _creds()) + "\n[z]\nk = 2\n"
    again = cf.put(text, DEV, _creds("ASIAEXAMPLE000000002"))
    assert again.index("[a]") < again.index("[dev]") < again.index("[z]")
    assert again.endswith("\n[z]\nk = 2\n") and "ASIAEXAMPLE000000001" not in again
    assert cf.drop(again, {"dev"}) == "[a]\nk = 1\n\n\n[z]\nk = 2\n"


def test_a_section_someone_else_wrote_is_never_replaced_or_dropped() -> None:
    theirs = "[dev]\naws_access_key_id = AKIATHEIRS\naws_secret_access_key = theirs\n"
    with pytest.raises(ConfigError) as caught:
        cf.put(theirs, DEV, _creds())
    assert "already has a [dev] section that ssocred did not write" in caught.value.message
    assert SECRET not in caught.value.line() and "theirs" not in caught.value.line()
    assert cf.drop(theirs, {"dev"}) == theirs
    assert cf.exports(theirs) == []
    # A comment that only looks like the marker is not one.
    fake = "[dev]\n# ssocred-export not json\naws_access_key_id = AKIATHEIRS\n"
    assert cf.exports(fake) == [] and cf.drop(fake, {"dev"}) == fake


@pytest.mark.parametrize("name", ["", " dev", "dev ", "a]b", "[x", "#dev", ";dev", "a\nb"])
def test_names_the_file_cannot_carry_are_refused(name: str) -> None:
    with pytest.raises(ConfigError):
        cf.check_name(name)


# --- the command --------------------------------------------------------------------------------


def _credentials_path() -> Path:
    return Path(os.environ["AWS_SHARED_CREDENTIALS_FILE"])


def _identity_from_file(sso: RunningEmulator, profile: str, tmp_path: Path) -> dict[str, str]:
    """GetCallerIdentity by real boto3 in a fresh process that has only the credentials file."""
    empty = tmp_path / "empty-config"
    empty.write_text("")
    env = {"PATH": os.environ["PATH"], "HOME": os.environ["HOME"], "AWS_CONFIG_FILE": str(empty),
           "AWS_SHARED_CREDENTIALS_FILE": str(_credentials_path()), "AWS_PROFILE": profile,
           "AWS_ENDPOINT_URL_STS": sso.url, "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
    code = "import boto3, json; print(json.dumps(boto3.client('sts').get_caller_identity()))"
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    result: dict[str, str] = json.loads(r.stdout)
    return result


@pytest.fixture
def dev(sso: RunningEmulator) -> RunningEmulator:
    write_config(session_config("corp") + process_profile("dev", ACCOUNT, ROLE))
    login(sso)
    return sso


@pytest.mark.slow
def test_an_exported_profile_works_for_boto3_from_the_credentials_file_alone(
        dev: RunningEmulator, tmp_path: Path) -> None:
    path = _credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# keys of another tool\n[default]\naws_access_key_id = AKIAOTHER\naws_secret_access_key = x\n")
    path.chmod(0o644)
    r = run("credentials-file", "--profile", "dev", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["action"] == "export" and out["name"] == "dev" and out["shadows_profile"] is True
    assert (out["session"], out["account_id"], out["role_name"]) == ("corp", ACCOUNT, ROLE)
    assert SECRET not in r.stdout and "aws_secret_access_key" not in r.stdout
    text = path.read_text()
    assert text.startswith("# keys of another tool\n[default]\naws_access_key_id = AKIAOTHER\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    identity = _identity_from_file(dev, "dev", tmp_path)
    assert identity["Account"] == ACCOUNT and f"assumed-role/{ROLE}/" in identity["Arn"]
    # The text form says that the section now comes before the profile's credential_process.
    again = run("credentials-file", "--profile", "dev")
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("Wrote [dev] to ") and "note: SDKs now read [dev]" in again.stdout
    assert path.read_text().count("[dev]") == 1
    assert dev.stats()["operations"]["GetRoleCredentials"] == 1  # the second export used the cache


@pytest.mark.slow
def test_list_status_doctor_remove_and_logout(dev: RunningEmulator) -> None:
    assert run("credentials-file", "--profile", "dev", "--as", "dev-keys").returncode == 0
    listed = json.loads(run("credentials-file", "--json").stdout)
    assert [(e["name"], e["role_name"], e["expired"]) for e in listed["exports"]] == [("dev-keys", ROLE, False)]
    assert "[dev-keys] corp 111111111111 ReadOnlyAccess: until " in run("credentials-file").stdout
    status = json.loads(run("status", "--json").stdout)
    assert [e["name"] for e in status["exports"]] == ["dev-keys"]
    assert "exported to " in run("status").stdout
    doctor = json.loads(run("doctor", "--profile", "dev", "--json").stdout)
    check = next(c for c in doctor["checks"] if c["id"] == "exports")
    assert check["status"] == "pass" and "[dev-keys] (corp 111111111111 ReadOnlyAccess) until" in check["summary"]
    # --remove takes the section out and nothing else.
    removed = run("credentials-file", "--remove", "--as", "dev-keys", "--json")
    assert removed.returncode == 0 and json.loads(removed.stdout)["removed"] is True
    assert cf.exports(_credentials_path().read_text()) == []
    assert run("credentials-file", "--remove", "--as", "dev-keys").stdout.startswith("No exported section")
    # logout removes what the session exported, and says so.
    assert run("credentials-file", "--profile", "dev").returncode == 0
    _credentials_path().write_text(_credentials_path().read_text() + "\n[mine]\nregion = eu-west-1\n")
    out = run("logout", "--sso-session", "corp")
    assert out.returncode == 0, out.stderr
    assert "removed from the credentials file: [dev]" in out.stdout
    assert _credentials_path().read_text().endswith("[mine]\nregion = eu-west-1\n")
    assert cf.exports(_credentials_path().read_text()) == []


@pytest.mark.slow
def test_a_section_someone_else_wrote_is_refused_and_kept(dev: RunningEmulator) -> None:
    path = _credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    theirs = "[dev]\naws_access_key_id = AKIATHEIRS\naws_secret_access_key = theirs\n"
    path.write_text(theirs)
    r = run("credentials-file", "--profile", "dev")
    assert r.returncode == 3
    assert r.stderr.count("\n") <= 2 and "already has a [dev] section that ssocred did not write" in r.stderr
    assert path.read_text() == theirs
    assert run("credentials-file", "--remove", "--as", "dev").stdout.startswith("No exported section")
    assert path.read_text() == theirs


def test_usage_errors_are_one_line(home: Path) -> None:
    r = run("credentials-file", "--sso-session", "corp", "--account-id", ACCOUNT, "--role-name", ROLE)
    assert r.returncode == 2 and "--as NAME" in r.stderr
    r = run("credentials-file", "--remove")
    assert r.returncode == 2 and "needs the section's name" in r.stderr
    r = run("credentials-file", "--profile", "dev", "--as", "a]b")
    assert r.returncode == 3 and "cannot be a section name" in r.stderr


@pytest.mark.slow
def test_the_daemon_rewrites_the_section_when_it_fetches_new_credentials(
        dev: RunningEmulator, tmp_path: Path, daemons: list[RunningDaemon]) -> None:
    dev.control(cred_ttl=12)
    assert run("credentials-file", "--profile", "dev").returncode == 0
    first = cf.exports(_credentials_path().read_text())[0].expires
    d = start_daemon(daemons, tmp_path, "--scan-interval", "1", "--prefetch-hours", "0")
    # Never requested through process, the role is pre-fetched only because it is exported.
    wrote = r"credentials file: wrote fresh credentials to \[dev\]"
    d.wait_log(wrote, timeout=60)
    dev.control(cred_ttl=3600)  # the next pre-fetch (due within seconds) brings keys that outlive the test
    d.wait_log(wrote, count=2, timeout=60)
    text = _credentials_path().read_text()
    [export] = cf.exports(text)
    assert first is not None and export.expires is not None and export.expires > first
    stored = Store().load_creds("corp", ACCOUNT, ROLE)
    assert stored is not None and f"aws_access_key_id = {stored.access_key_id}\n" in text
    assert stored.secret_access_key not in d.log_text() and stored.session_token not in d.log_text()
    identity = _identity_from_file(dev, "dev", tmp_path)
    assert identity["Account"] == ACCOUNT
    assert stat.S_IMODE(_credentials_path().stat().st_mode) == 0o600
    # Without a daemon, an expired export is named by doctor with the way out.
    d.stop()
    expired = text.replace(json.dumps(iso_z(export.expires)), '"2020-01-01T00:00:00Z"')
    assert expired != text
    _credentials_path().write_text(expired)
    doctor = json.loads(run("doctor", "--profile", "dev", "--json").stdout)
    check = next(c for c in doctor["checks"] if c["id"] == "exports")
    assert check["status"] == "warn" and "no daemon runs to keep them fresh" in check["summary"], check
    assert "ssocred credentials-file --remove --as dev" in check["fix"]


@pytest.mark.slow
def test_a_chained_profile_can_be_exported(dev: RunningEmulator, tmp_path: Path) -> None:
    deploy = "arn:aws:iam::222233334444:role/Deploy"
    write_config(session_config("corp") + process_profile("dev", ACCOUNT, ROLE)
                 + f"[profile chained]\nrole_arn = {deploy}\nsource_profile = dev\n")
    r = run("credentials-file", "--profile", "chained", "--as", "deploy", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["account_id"] == "222233334444" and out["role_name"].startswith("Deploy~")
    identity = _identity_from_file(dev, "deploy", tmp_path)
    assert identity["Arn"] == "arn:aws:sts::222233334444:assumed-role/Deploy/ssocred"
