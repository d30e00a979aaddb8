"""``ssocred env --format``: the AWS CLI v2 ``configure export-credentials`` formats, byte for byte.

The expected texts are what ``aws configure export-credentials --format F`` prints for the same
credentials (its formatters in ``awscli/customizations/configure/exportcreds.py``: one line per
variable, values unquoted, the expiry as botocore's ``datetime.isoformat()``; ``process`` is JSON
indented by 2). ssocred's own ``sh``, ``fish`` and ``json`` keep their text and the region.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ssocred.cli.render import ENV_FORMATS, env_text
from ssocred.model.sso import RoleCredentials
from tests.support.cli import ACCOUNT, ROLE, login, process_profile, run, session_config, ssocred_line, write_config
from tests.support.emulator import RunningEmulator

#: 2025-11-30T12:00:00Z
EXPIRES = 1764504000.0
CREDS = RoleCredentials("ASIAEXAMPLEKEY", "secret/with+chars=", "TOKEN/abc+def==", EXPIRES, ACCOUNT, ROLE,
                        EXPIRES - 3600)
VALUES = {"AWS_ACCESS_KEY_ID": "ASIAEXAMPLEKEY", "AWS_SECRET_ACCESS_KEY": "secret/with+chars=",
          "AWS_SESSION_TOKEN": "TOKEN/abc+def==", "AWS_CREDENTIAL_EXPIRATION": "2025-11-30T12:00:00Z",
          "AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1"}

EXPECTED = {
    "env": (
        "export AWS_ACCESS_KEY_ID=ASIAEXAMPLEKEY\n"
        "export AWS_SECRET_ACCESS_KEY=secret/with+chars=\n"
        "export AWS_SESSION_TOKEN=TOKEN/abc+def==\n"
        "export AWS_CREDENTIAL_EXPIRATION=2025-11-30T12:00:00+00:00\n"
    ),
    "env-no-export": (
        "AWS_ACCESS_KEY_ID=ASIAEXAMPLEKEY\n"
        "AWS_SECRET_ACCESS_KEY=secret/with+chars=\n"
        "AWS_SESSION_TOKEN=TOKEN/abc+def==\n"
        "AWS_CREDENTIAL_EXPIRATION=2025-11-30T12:00:00+00:00\n"
    ),
    "powershell": (
        '$Env:AWS_ACCESS_KEY_ID="ASIAEXAMPLEKEY"\n'
        '$Env:AWS_SECRET_ACCESS_KEY="secret/with+chars="\n'
        '$Env:AWS_SESSION_TOKEN="TOKEN/abc+def=="\n'
        '$Env:AWS_CREDENTIAL_EXPIRATION="2025-11-30T12:00:00+00:00"\n'
    ),
    "windows-cmd": (
        "set AWS_ACCESS_KEY_ID=ASIAEXAMPLEKEY\n"
        "set AWS_SECRET_ACCESS_KEY=secret/with+chars=\n"
        "set AWS_SESSION_TOKEN=TOKEN/abc+def==\n"
        "set AWS_CREDENTIAL_EXPIRATION=2025-11-30T12:00:00+00:00\n"
    ),
    "process": (
        "{\n"
        '  "Version": 1,\n'
        '  "AccessKeyId": "ASIAEXAMPLEKEY",\n'
        '  "SecretAccessKey": "secret/with+chars=",\n'
        '  "SessionToken": "TOKEN/abc+def==",\n'
        '  "Expiration": "2025-11-30T12:00:00+00:00"\n'
        "}\n"
    ),
    # ssocred's own, unchanged: quoted for the shell, with the profile's region.
    "sh": (
        "export AWS_ACCESS_KEY_ID=ASIAEXAMPLEKEY\n"
        "export AWS_SECRET_ACCESS_KEY=secret/with+chars=\n"
        "export AWS_SESSION_TOKEN=TOKEN/abc+def==\n"
        "export AWS_CREDENTIAL_EXPIRATION=2025-11-30T12:00:00Z\n"
        "export AWS_REGION=eu-west-1\n"
        "export AWS_DEFAULT_REGION=eu-west-1\n"
    ),
    "fish": (
        "set -gx AWS_ACCESS_KEY_ID ASIAEXAMPLEKEY;\n"
        "set -gx AWS_SECRET_ACCESS_KEY secret/with+chars=;\n"
        "set -gx AWS_SESSION_TOKEN TOKEN/abc+def==;\n"
        "set -gx AWS_CREDENTIAL_EXPIRATION 2025-11-30T12:00:00Z;\n"
        "set -gx AWS_REGION eu-west-1;\n"
        "set -gx AWS_DEFAULT_REGION eu-west-1;\n"
    ),
    "json": json.dumps(VALUES, indent=2) + "\n",
}


def test_every_format_has_its_fixture() -> None:
    assert set(ENV_FORMATS) == set(EXPECTED)


@pytest.mark.parametrize("fmt", sorted(EXPECTED))
def test_each_format_is_the_exact_text(fmt: str) -> None:
    assert env_text(fmt, VALUES, CREDS) == EXPECTED[fmt]


@pytest.mark.slow
def test_the_process_format_feeds_botocore_and_the_env_format_a_shell(sso: RunningEmulator) -> None:
    """``env --format process`` is a credential_process of its own; ``env`` output works in a real shell."""
    line = f"{ssocred_line()} env --profile dev --format process"
    write_config(session_config("corp") + process_profile("dev", ACCOUNT, ROLE)
                 + f"[profile viaexport]\ncredential_process = {line}\nregion = us-east-1\n")
    login()
    code = ("import boto3, json; s = boto3.Session(profile_name='viaexport'); "
            "print(json.dumps(s.client('sts').get_caller_identity()['Arn']))")
    who = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert who.returncode == 0, who.stderr
    assert json.loads(who.stdout) == f"arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/alice@example.com"

    exported = run("env", "--profile", "dev", "--format", "env")
    assert exported.returncode == 0, exported.stderr
    shell = subprocess.run(["sh", "-c", exported.stdout + 'printf %s "$AWS_ACCESS_KEY_ID"'], capture_output=True,
                           text=True, timeout=30, check=False, env={"PATH": os.environ["PATH"]})
    assert shell.stdout.startswith("ASIA") and shell.stdout == json.loads(run(
        "env", "--profile", "dev", "--format", "process").stdout)["AccessKeyId"]
