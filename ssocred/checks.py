"""The individual ``ssocred doctor`` checks: each looks at one thing and says pass, warn, fail or skip.

Checks run in order on one shared ``Context``; a later check reads what an earlier one found
(the resolved session, the stored token, whether the portal answered). No check prints or
returns a secret, and none deletes stored data.
Example: ``ctx = Context("dev", None); config(ctx).status == "pass"``
"""

from __future__ import annotations

import os
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ssocred.configparse import clean, section_label
from ssocred.errors import ConfigError, SsocredError, UsageError
from ssocred.model import REGISTRATION_MARGIN, iso_z, login_command, needs_inline_refresh, token_usable
from ssocred.render import duration

if TYPE_CHECKING:
    from ssocred.config import AwsConfig, ProfileConfig, ResolvedSso
    from ssocred.model import Token
    from ssocred.store import Store

#: The four verdicts, e.g. ``Check("daemon", WARN, "not running", "run: ssocred service install")``.
PASS, WARN, FAIL, SKIP = "pass", "warn", "fail", "skip"
#: botocore's SSO provider takes over a profile with either key; the ssocred part each one names.
_NATIVE_KEYS = {"sso_account_id": "account", "sso_role_name": "role"}


@dataclass(frozen=True)
class Check:
    """One check's verdict: ``Check("token", "fail", "not logged in", "run: ssocred login")``."""

    id: str
    status: str
    summary: str
    fix: str | None = None
    #: The exit code this failure stands for when it is not the check's usual one (not in the JSON).
    exit_code: int | None = None

    def as_json(self) -> dict[str, Any]:
        """The JSON object: ``{"id": "token", "status": "fail", "summary": "...", "fix": "..."}``."""
        return {"id": self.id, "status": self.status, "summary": self.summary, "fix": self.fix}


@dataclass
class Context:
    """What the checks learn as they go: ``Context("dev", None)``, then ``config(ctx)`` sets ``ctx.target``."""

    profile: str | None
    session: str | None
    cfg: AwsConfig | None = None
    target: ResolvedSso | None = None
    account: str | None = None
    role: str | None = None
    store: Store | None = None
    keyring_ok: bool = False
    stored: Token | None = None
    #: The token the portal checks may send: present and not expired.
    token: Token | None = None
    ca_ok: bool = True
    endpoint_ok: bool = False
    results: dict[str, Check] = field(default_factory=dict)

    @property
    def key(self) -> str | None:
        """The store name of the selected session: ``"corp"``, a legacy start URL, or None."""
        return self.target.cache_key if self.target else None

    def selector(self) -> str:
        """The command-line selector of this session, e.g. ``--sso-session corp``."""
        if self.target is not None and self.target.legacy and self.profile:
            return f"--profile {shlex.quote(self.profile)}"
        return f"--sso-session {shlex.quote(self.key or '<name>')}"

    def login_fix(self) -> str:
        """``run: ssocred login --sso-session corp`` (through the profile for a legacy session)."""
        if self.target is not None and self.target.legacy and self.profile:
            return f"run: ssocred login {self.selector()}"
        return f"run: {login_command(self.key or '<name>')}"


# --- 1. config ------------------------------------------------------------------------------------


def config(ctx: Context) -> Check:
    """The config file exists and the profile or session resolves: ``config(ctx).fix`` names the line to add."""
    from ssocred import commands, paths
    from ssocred import config as aws_config

    path = paths.aws_config_file()
    shown = aws_config.display_path(path)
    problem = aws_config.file_problem(path)
    if problem is not None:
        return Check("config", FAIL, problem.message, problem.fix)
    if not path.is_file():
        where = f"[sso-session {clean(ctx.session)}]" if ctx.session else "an [sso-session <name>] section"
        return Check("config", FAIL, f"{shown} does not exist",
                     f"run: ssocred configure, or create it with {where} holding "
                     "sso_start_url = <start URL> and sso_region = <region>")
    try:
        ctx.cfg = cfg = aws_config.load()
        ctx.target = target = commands.resolve(cfg, ctx.profile, ctx.session)
        if ctx.profile:
            prof = cfg.profile(ctx.profile)
            found = cfg.ssocred_target(ctx.profile) if _uses_ssocred(prof) else target
            ctx.account, ctx.role = found.account_id, found.role_name
    except UsageError as exc:
        return Check("config", WARN, f"{exc.message}; nothing selected to check", exc.fix)
    except ConfigError as exc:
        ctx.target = None
        return Check("config", FAIL, exc.message, exc.fix)
    if not target.start_url.startswith("https://"):
        ctx.target = None  # login refuses it, so nothing after this can use the session
        return Check("config", FAIL, f"sso_start_url '{clean(target.start_url)}' does not use https",
                     "set sso_start_url = https://<your-portal>.awsapps.com/start")
    bad_region = aws_config.region_problem(cfg, target, ctx.profile)
    if bad_region is not None:
        ctx.target = None  # no client can be made for it, so nothing after this can reach the portal
        return Check("config", FAIL, bad_region.message, bad_region.fix)
    what = f"profile '{clean(ctx.profile)}' uses " if ctx.profile else ""
    if target.legacy:
        return Check("config", WARN,
                     f"{what}a legacy SSO setup without an sso-session ({clean(target.start_url)}, "
                     f"{clean(target.region)}): its tokens cannot be refreshed",
                     f"move sso_start_url and sso_region into an [sso-session <name>] section and add "
                     f"sso_session = <name> to {section_label('profile', ctx.profile or '')}")
    return Check("config", PASS,
                 f"{what}sso-session '{clean(target.cache_key)}' ({clean(target.start_url)}, {clean(target.region)})")


def _uses_ssocred(prof: ProfileConfig) -> bool:
    """Whether ssocred serves this profile: ssocred_* keys, or a credential_process running ssocred."""
    return any(key.startswith("ssocred_") for key in prof.values) or runs_ssocred(prof.credential_process)


def runs_ssocred(line: str | None) -> bool:
    """Whether a credential_process line runs ``ssocred process``: ``runs_ssocred("ssocred process --profile d")``."""
    from ssocred import process_args

    if not line:
        return False
    try:
        return process_args.from_line(line) is not None
    except SsocredError:
        return True  # ssocred, with arguments it refuses (routing names that)
    except ValueError:
        return False


# --- 2. routing -----------------------------------------------------------------------------------


def routing(ctx: Context) -> Check:
    """Whether botocore will ask ssocred for the profile: ``routing(ctx).status == "fail"`` with sso_account_id set."""
    from ssocred import awscache
    from ssocred.config import OWN_KEYS

    if not ctx.profile:
        return Check("routing", SKIP, "no profile selected (checking an sso-session only)")
    if ctx.cfg is None or ctx.profile not in ctx.cfg.profiles:
        return Check("routing", SKIP, "the profile could not be read (see config)")
    prof = ctx.cfg.profile(ctx.profile)
    label = section_label("profile", ctx.profile)
    line = prof.credential_process
    native = [key for key in _NATIVE_KEYS if key in prof.values]
    if line and native:
        named = _line_names(line)
        actions = []
        for key in native:
            part = _NATIVE_KEYS[key]
            own = OWN_KEYS[part]
            # The sso_* key may be the only place that names the part; then it must move, not vanish.
            actions.append(f"remove {key}" if prof.values.get(own) or part in named
                           else f"rename {key} to {own}")
        return Check("routing", FAIL,
                     f"{label} has credential_process and {' and '.join(native)}: botocore's SSO provider "
                     "runs first and credential_process is never called",
                     f"in {label}: {' and '.join(actions)} (ssocred profiles carry the account and role "
                     "in the credential_process arguments)")
    if line:
        return _command_routing(ctx.profile, label, line)
    if any(key.startswith("ssocred_") for key in prof.values):
        return Check("routing", FAIL, f"{label} has ssocred_* keys but no credential_process, so no SDK asks ssocred",
                     f"add credential_process = ssocred process --profile {shlex.quote(ctx.profile)} to {label}")
    if native:
        note = "botocore uses its own SSO provider and the token in ~/.aws/sso/cache"
        if ctx.key and ctx.key in awscache.exported_sessions():
            return Check("routing", PASS, f"{note}, which ssocred keeps exported")
        return Check("routing", WARN, f"{note}, which ssocred does not fill",
                     f"run: ssocred login {ctx.selector()} --export-aws-cli-cache, or replace "
                     f"{' and '.join(native)} with credential_process = ssocred process "
                     f"--profile {shlex.quote(ctx.profile)} and ssocred_account_id/ssocred_role_name")
    return Check("routing", WARN, f"{label} names no account and role, so SDKs get no credentials from it",
                 f"add credential_process = ssocred process {ctx.selector()} "
                 f"--account-id <account id> --role-name <role name> to {label}")


def _line_names(line: str) -> set[str]:
    """Which of ``account`` and ``role`` a credential_process line names itself (through the one grammar)."""
    from ssocred import process_args

    try:
        request = process_args.from_line(line)
    except (ValueError, SsocredError):
        return set()
    if request is None:
        return set()
    return {part for part, value in (("account", request.account), ("role", request.role)) if value}


def _command_routing(profile: str, label: str, line: str) -> Check:
    """The verdict on a credential_process line: it must start a program, and should run ssocred."""
    from botocore.compat import compat_shell_split

    try:
        argv = compat_shell_split(line)
    except ValueError as exc:
        return Check("routing", FAIL, f"credential_process in {label} cannot be split into words as botocore "
                     f"does ({clean(str(exc))}), so every SDK fails for this profile", "fix its quoting")
    problem = executable_problem(argv, label)
    if problem is not None:
        return Check("routing", FAIL, problem.message, problem.fix)
    where = clean(resolved_path(argv[0]) or argv[0], 120)
    if "/" in argv[0] and not os.path.isabs(argv[0]):
        return Check("routing", WARN, f"credential_process in {label} runs {clean(argv[0])}, a path relative to the "
                     "current directory: SDKs started in another directory will not find it",
                     f"write its absolute path: {clean(os.path.abspath(argv[0]), 120)}")
    if runs_ssocred(line):
        return Check("routing", PASS, f"credential_process runs ssocred process ({where})")
    return Check("routing", WARN, f"credential_process runs another program ({where}), not ssocred",
                 f"set credential_process = ssocred process --profile {shlex.quote(profile)} in {label}")


def resolved_path(program: str) -> str | None:
    """Where the OS finds ``program`` when a process starts it without a shell, else None.

    As ``subprocess`` (and so botocore) does: a name with a ``/`` is a path, any other is looked up
    in this environment's ``PATH``, the first executable file winning. Example: ``resolved_path("sh")``
    """
    if "/" in program:
        return program if _executable(program) else None
    for folder in os.get_exec_path():
        candidate = os.path.join(folder or ".", program)
        if _executable(candidate):
            return candidate
    return None


def _executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def executable_problem(argv: list[str], label: str) -> ConfigError | None:
    """Why the command of a credential_process line would not start, as botocore starts it; None if it would.

    Example: ``executable_problem(["ssocred", "process"], "[profile dev]").message`` names the PATH problem.
    """
    if not argv or not argv[0]:
        return ConfigError(f"credential_process in {label} is empty", fix=f"set credential_process in {label}")
    program = argv[0]
    shown = clean(program, 120)
    runs = f"credential_process in {label} runs {shown}"
    if program.startswith("~"):
        return ConfigError(f"{runs}, but SDKs do not expand ~ in credential_process",
                           fix=f"write the full path: {clean(os.path.expanduser(program), 120)}")
    found = resolved_path(program)
    if found is None:
        blocked = _blocked(program)
        if blocked is not None:
            what = "a directory" if os.path.isdir(blocked) else "not executable"
            return ConfigError(f"{runs}, and {clean(blocked, 120)} is {what}, so every SDK fails for this profile",
                               fix=f"chmod +x {clean(blocked, 120)}" if what != "a directory"
                               else "point credential_process at the program itself")
        if "/" in program:
            return ConfigError(f"{runs}, which does not exist, so every SDK fails for this profile",
                               fix=_install_fix(program))
        return ConfigError(f"{runs}, which is not on PATH, so every SDK fails for this profile",
                           fix=_install_fix(program))
    interpreter = _missing_interpreter(found)
    if interpreter is not None:
        return ConfigError(f"{runs} ({clean(found, 120)}), whose interpreter {clean(interpreter, 120)} does not "
                           "exist (was its virtualenv moved or removed?)", fix=_install_fix(program))
    return None


def _blocked(program: str) -> str | None:
    """The file or directory that exists under ``program``'s name but cannot be run, if any."""
    if "/" in program:
        return program if os.path.exists(program) else None
    return next((os.path.join(folder or ".", program) for folder in os.get_exec_path()
                 if os.path.exists(os.path.join(folder or ".", program))), None)


def _missing_interpreter(path: str) -> str | None:
    """The ``#!`` interpreter of a script when it does not exist (a moved venv), else None."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(256)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None
    words = head[2:].split(b"\n", 1)[0].split()
    if not words:
        return None
    interpreter = os.fsdecode(words[0])
    return None if _executable(interpreter) else interpreter


def _install_fix(program: str) -> str:
    """How to make a credential_process command start; for ssocred, the path of this one."""
    if Path(program).name.removesuffix(".exe") != "ssocred":
        return "install that program, or write its absolute path in credential_process"
    from ssocred.paths import ssocred_command

    this = " ".join(shlex.quote(word) for word in ssocred_command())
    return (f"write the absolute path in credential_process ({clean(this, 120)} process ...), or put ssocred on "
            "the PATH that SDKs see (pipx install <ssocred checkout>, see the README's Quickstart)")


# --- 3. keyring -----------------------------------------------------------------------------------


def keyring(ctx: Context) -> Check:
    """The OS keyring answers and is unlocked (reading the session item proves both): ``keyring(ctx).status``."""
    from ssocred.errors import StoreError
    from ssocred.store import Store

    ctx.store = store = Store()
    try:
        name = store.backend_name()
        if ctx.key is None:
            ctx.keyring_ok = True
            return Check("keyring", PASS, f"{name} is available (no session selected to read)")
        ctx.stored = store.load_session(ctx.key)
    except StoreError as exc:
        return Check("keyring", FAIL, exc.message, exc.fix)
    ctx.keyring_ok = True
    return Check("keyring", PASS, f"{name} is unlocked and readable")


# --- 4. cache -------------------------------------------------------------------------------------


def cache(ctx: Context) -> Check:
    """The state dir, the store index and the profile's cached role credentials can be used: ``cache(ctx).status``.

    Each is what ``process``, ``status`` and ``logout`` read or write; none is changed here but the
    state dir, which is made (0700) when missing, exactly as the next command would make it.
    """
    from ssocred.paths import private_dir, state_dir
    from ssocred.store import is_placeholder

    if not ctx.keyring_ok or ctx.store is None:
        return Check("cache", SKIP, "the keyring cannot be read (see keyring)")
    store = ctx.store
    try:
        _usable_dir(private_dir(state_dir()))
        index = store.index()
        creds = None
        if ctx.key and ctx.account and ctx.role:
            creds = store.load_creds(ctx.key, ctx.account, ctx.role)
    except SsocredError as exc:
        return Check("cache", FAIL, exc.message, exc.fix, exit_code=exc.exit_code)
    roles = sum(1 for c in index.creds if not is_placeholder(c))
    counts = f"{_count(len(index.sessions), 'session')}, {_count(roles, 'cached role')}"
    summary = f"state dir and store index usable ({counts})"
    if not (ctx.key and ctx.account and ctx.role):
        return Check("cache", PASS, summary)
    role = f"role {clean(ctx.role)} in {clean(ctx.account)}"
    if creds is None:
        return Check("cache", PASS, f"{summary}; no credentials cached for {role} (the first call fetches them)")
    left = creds.expiration - time.time()
    state = f"valid for {duration(left)}" if left > 0 else "expired (the next call fetches new ones)"
    return Check("cache", PASS, f"{summary}; credentials for {role} cached, {state}")


def _count(n: int, word: str) -> str:
    """``_count(2, "session") == "2 sessions"``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def _usable_dir(folder: Path) -> None:
    """StoreError unless a file can be created in ``folder`` (a read-only or full file system)."""
    import tempfile

    from ssocred.errors import StoreError

    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise StoreError(f"cannot write in the state dir {folder} ({exc.strerror or type(exc).__name__})",
                         fix="make it writable, or set SSOCRED_STATE_DIR to a directory you can write") from None


# --- 5. token -------------------------------------------------------------------------------------


def token(ctx: Context) -> Check:
    """Logged in with a valid token, refreshed first when nearly expired: ``token(ctx).summary``.

    The refresh is ``tokens.fresh_token``'s singleflight, so it never races the daemon or ``process``.
    """
    from ssocred.errors import LoginRequired
    from ssocred.tokens import fresh_token

    if ctx.key is None:
        return Check("token", SKIP, "no SSO session resolved (see config)")
    if not ctx.keyring_ok or ctx.store is None:
        return Check("token", SKIP, "the keyring cannot be read (see keyring)")
    current = ctx.stored
    if current is None:
        return Check("token", FAIL, f"not logged in to SSO session '{clean(ctx.key)}'", ctx.login_fix())
    now = time.time()
    refreshed = False
    if needs_inline_refresh(current, now) and current.refreshable(now):
        try:
            new = fresh_token(ctx.store, ctx.key)
        except LoginRequired as exc:
            return Check("token", FAIL, exc.message, ctx.login_fix())
        except SsocredError as exc:
            return Check("token", FAIL, f"the token is expired or nearly so and refreshing it failed: {exc.message}",
                         exc.fix, exit_code=exc.exit_code)
        refreshed = new.access_token != current.access_token
        ctx.stored = current = new
        now = time.time()
    left = current.remaining(now)
    if not token_usable(current, now):
        why = "and cannot be refreshed" if not current.refreshable(now) else "and was not refreshed"
        return Check("token", FAIL, f"the token of SSO session '{clean(ctx.key)}' has expired {why}",
                     ctx.login_fix())
    ctx.token = current
    from ssocred.tokens import interrupted_text, refresh_interrupted

    began = refresh_interrupted(ctx.store, ctx.key, current)
    if began is not None:
        return Check("token", WARN, f"{interrupted_text(clean(ctx.key))} at {iso_z(began)}: the token works for "
                     f"{duration(left)}, but the service may no longer accept its refresh token", ctx.login_fix())
    if refreshed:
        return Check("token", PASS, f"logged in; token refreshed just now, valid for {duration(left)}")
    if needs_inline_refresh(current, now):
        return Check("token", WARN, f"logged in, but the token ends in {duration(left)} and cannot be refreshed",
                     ctx.login_fix())
    extra = "" if current.refreshable(now) else "; not refreshable: log in again when it expires"
    return Check("token", PASS, f"logged in; token valid for {duration(left)}{extra}")


# --- 6. registration ------------------------------------------------------------------------------


def registration(ctx: Context) -> Check:
    """The client registration behind the refresh token has over 7 days left: ``registration(ctx).status``."""
    if ctx.stored is None:
        return Check("registration", SKIP, "no stored token (see token)")
    reg = ctx.stored.registration
    if reg is None:
        return Check("registration", SKIP, "no client registration stored with this token (it cannot be refreshed)")
    now = time.time()
    left = reg.expires_at - now
    until = iso_z(reg.expires_at)
    if left <= 0:
        return Check("registration", FAIL, f"the client registration expired at {until}; the token cannot be "
                     "refreshed", f"{ctx.login_fix()} (a login registers a new client)")
    if left < REGISTRATION_MARGIN:
        fix = f"{ctx.login_fix()} (a login registers a new client when this one has under 7 days left)"
        return Check("registration", WARN, f"the client registration ends in {duration(left)} ({until}); then the "
                     "token can no longer be refreshed", fix)
    return Check("registration", PASS, f"client registration valid for {duration(left)} (until {until})")


# --- 10. daemon, 11. service -----------------------------------------------------------------------


def daemon(ctx: Context) -> Check:
    """The daemon runs (it refreshes tokens before anyone waits): ``daemon(ctx).summary == "running (pid ...)"``."""
    from ssocred.notify import read_status

    status = read_status()
    if status is None:
        from ssocred import awscache

        exported = ctx.key is not None and ctx.key in awscache.exported_sessions()
        ends = f" (it expires at {iso_z(ctx.stored.expires_at)})" if exported and ctx.stored else ""
        what = (f"; the token exported to the AWS CLI cache for '{clean(ctx.key or '')}' is not kept fresh, so the "
                f"AWS CLI and SDKs using it stop working when it expires{ends}") if exported else ""
        return Check("daemon", WARN, f"not running: tokens are refreshed only when a command needs one{what}",
                     "run: ssocred service install (or start ssocred daemon)")
    running = f"running (pid {status.get('pid')}, since {status.get('started_at', '?')})"
    session = status.get("sessions", {}).get(ctx.key or "") if isinstance(status.get("sessions"), dict) else None
    error = session.get("last_error") if isinstance(session, dict) else None
    if error:
        return Check("daemon", WARN, f"{running}; its last attempt for '{clean(ctx.key or '')}' failed: "
                     f"{clean(str(error), 200)}", None)
    return Check("daemon", PASS, running)


def service(ctx: Context) -> Check:
    """The daemon is installed as systemd user units or a launchd agent: ``service(ctx).status``."""
    from ssocred import service as svc

    try:
        platform = svc.host_platform()
        info = svc.status(platform)
    except SsocredError as exc:
        return Check("service", SKIP, exc.message)
    install = "run: ssocred service install"
    states = set(info["files"].values())
    if "missing" in states:
        return Check("service", WARN, f"not installed ({info['manager']})", install)
    if "outdated" in states:
        return Check("service", WARN, f"installed, but its files are outdated ({info['manager']})", install)
    if platform == "darwin":
        agent = info.get("agent", {})
        if not agent.get("loaded"):
            return Check("service", WARN, "installed, but the launchd agent is not loaded", install)
        return Check("service", PASS, f"installed and loaded ({info['manager']})")
    socket = info.get("units", {}).get("ssocred.socket", {}).get("active", "unknown")
    if socket == "active":
        return Check("service", PASS, f"installed; ssocred.socket is active ({info['manager']})")
    if socket in ("inactive", "failed", "deactivating"):
        return Check("service", WARN, f"installed, but ssocred.socket is {socket}",
                     "run: systemctl --user enable --now ssocred.socket")
    # No user session manager to ask (a container, su, ssh without lingering): the files are all we can see.
    return Check("service", PASS, f"installed ({info['manager']}); cannot tell whether ssocred.socket is active "
                 f"({clean(str(socket), 100)})")
