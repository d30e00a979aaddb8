"""``ssocred demo``: the whole flow against the embedded emulator, in a throw-away directory.

Nothing is faked: a real emulator process answers over HTTP, the login runs the device code
flow (the emulator approves it as a user would), and a real boto3 process gets its credentials
through ``credential_process``. The user's ``~/.aws`` and keyring items are never touched.
Example: ``ssocred demo --keep``
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from ssocred.errors import ServiceError, SsocredError

_ISOLATE = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL")
SESSION = "demo"
START_URL = "https://d-0000000000.awsapps.com/start"
REGION = "us-east-1"


def _step(n: int, text: str) -> None:
    print(f"\n== {n}. {text}", flush=True)


def _start_emulator(tmp: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ssocred.emulator", "--port", "0", "--accounts", "2", "--roles", "2"],
        stdout=subprocess.PIPE, stderr=(tmp / "emulator.log").open("w"), text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    try:
        url = str(json.loads(line)["url"])
    except (ValueError, KeyError):
        proc.kill()
        raise ServiceError("the emulator did not start", fix=f"see {tmp / 'emulator.log'}") from None
    return proc, url


def _choose_store(tmp: Path) -> str:
    """The OS keyring when usable, else the demo's own file store (said, never silent)."""
    from ssocred.adapters.store import Store

    try:
        return f"the OS keyring ({Store().backend_name()})"
    except SsocredError as exc:
        reason = exc.message
    from ssocred.adapters.demo_keyring import use_demo_store

    use_demo_store(str(tmp / "demo-store.json"))
    return (f"a throw-away file store in {tmp}, because {reason[0].lower() + reason[1:]} here; "
            "outside the demo ssocred refuses to run without an OS keyring")


def _ssocred(*args: str, check: bool = True) -> str:
    """Run ``ssocred ARGS`` as a new process, as a user or an SDK would; its stdout."""
    out = subprocess.run([sys.executable, "-m", "ssocred", *args], capture_output=True, text=True, check=False,
                         timeout=120)
    if check and out.returncode != 0:
        raise ServiceError(f"ssocred {args[0]} failed: {out.stderr.strip()}")
    return out.stdout


def _show(text: str) -> None:
    print("   " + text.strip("\n").rstrip().replace("\n", "\n   "))


def _mask(value: str) -> str:
    return value[:4] + "..." if len(value) > 8 else "..."


def run(keep: bool = False) -> int:
    """Run the demo; returns 0 when every step worked."""
    tmp = Path(tempfile.mkdtemp(prefix="ssocred-demo-"))
    os.chmod(tmp, 0o700)
    for name in _ISOLATE:
        os.environ.pop(name, None)
    os.environ.update({
        "AWS_CONFIG_FILE": str(tmp / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "credentials"),
        "SSOCRED_STATE_DIR": str(tmp / "state"),
        "SSOCRED_RUNTIME_DIR": str(tmp / "run"),
        "SSOCRED_KEYRING_SERVICE": f"ssocred-demo-{uuid.uuid4().hex[:8]}",
    })
    emulator, url = _start_emulator(tmp)
    store = None
    try:
        for var in ("AWS_ENDPOINT_URL_SSO_OIDC", "AWS_ENDPOINT_URL_SSO", "AWS_ENDPOINT_URL_STS"):
            os.environ[var] = url
        _step(1, f"A local IAM Identity Center emulator is running at {url}")
        print(f"   working directory (deleted afterwards): {tmp}")
        store_desc = _choose_store(tmp)
        print(f"   credential store: {store_desc}")

        from ssocred.adapters.store import Store
        from ssocred.usecases.login import LoginRequest, login

        store = Store()
        _step(2, "Log in (device code flow; the emulator approves the code as you would in a browser)")
        req = LoginRequest(key=SESSION, start_url=START_URL, region=REGION, use_device_code=True,
                           open_browser=False, timeout=60)
        result = login(req, store, sys.stdout)
        print(f"   logged in; token valid for {int(result.token.lifetime)} s, "
              f"refreshable: {result.token.refreshable(result.token.issued_at)}")

        (tmp / "config").write_text(
            f"# written by hand: kept as it is\n[sso-session {SESSION}]\nsso_start_url = {START_URL}\n"
            f"sso_region = {REGION}\nsso_registration_scopes = sso:account:access\n"
        )
        _step(3, "ssocred accounts: the accounts and roles you can use")
        _show(_ssocred("accounts", "--sso-session", SESSION))

        _step(4, "ssocred configure populate: a profile per account and role, using credential_process")
        _show(_ssocred("configure", "populate", "--sso-session", SESSION))
        written = (tmp / "config").read_text()
        profile = written.split("[profile ", 1)[1].split("]", 1)[0]
        section = written[written.index(f"[profile {profile}]"):]
        _show(section.split("\n\n", 1)[0])

        _step(5, f"ssocred process for profile {profile}: credential_process JSON (secrets shortened here)")
        line = written.split(f"[profile {profile}]\ncredential_process = ", 1)[1].split("\n", 1)[0]
        creds = json.loads(_ssocred(*shlex.split(line)[shlex.split(line).index("process"):]))
        for key in ("SecretAccessKey", "SessionToken"):
            creds[key] = _mask(creds[key])
        print("   " + json.dumps(creds))

        _step(6, f"Real boto3 in a new process: Session(profile_name={profile!r}).client('sts')"
                 ".get_caller_identity()")
        code = (f"import boto3, json; i = boto3.Session(profile_name={profile!r}).client('sts')"
                ".get_caller_identity(); print(json.dumps({k: i[k] for k in ('Account', 'Arn', 'UserId')}))")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                             timeout=120)
        if out.returncode != 0:
            raise ServiceError(f"boto3 could not get credentials: {out.stderr.strip().splitlines()[-1:]}")
        ident = json.loads(out.stdout)
        print(f"   Account {ident['Account']}\n   Arn     {ident['Arn']}\n   UserId  {ident['UserId']}")

        _step(7, f"ssocred doctor --profile {profile}")
        _show(_ssocred("doctor", "--profile", profile, check=False))

        _step(8, "ssocred status")
        _show(_ssocred("status"))
        print("\nDone: the demo logged in once and every later step reused the stored token.")
        return 0
    finally:
        if store is not None:
            try:
                store.delete_session(SESSION)
            except SsocredError:
                pass
        emulator.terminate()
        emulator.wait(timeout=10)
        if keep:
            print(f"(kept {tmp})")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
