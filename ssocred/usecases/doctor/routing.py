"""The ``routing`` check: each profile's ``credential_process`` runs this ssocred, as botocore would start it.

Also what ``whoami`` needs to start a helper the way botocore does: ``executable_problem`` and
``runs_ssocred``. Example: ``runs_ssocred("ssocred process --profile dev")`` is True.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from ssocred.errors import ConfigError, SsocredError
from ssocred.model.config_syntax import clean, section_label
from ssocred.usecases.doctor.check import FAIL, NATIVE_KEYS, PASS, SKIP, WARN, Check, Context

if TYPE_CHECKING:
    from ssocred.model.config import ProfileConfig


def uses_ssocred(prof: ProfileConfig) -> bool:
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
    if not ctx.profile:
        return Check("routing", SKIP, "no profile selected (checking an sso-session only)")
    if ctx.cfg is None or ctx.profile not in ctx.cfg.profiles:
        return Check("routing", SKIP, "the profile could not be read (see config)")
    label = section_label("profile", ctx.profile)
    root = _chain_root(ctx)
    if root is not None:
        # botocore runs its own AssumeRole for a role_arn profile, with the source profile's credentials.
        source = _routing_for(ctx, root)
        summary = (f"botocore assumes the role of {label} itself, with the credentials of "
                   f"{section_label('profile', root)}: {source.summary}")
        return Check("routing", source.status, summary, source.fix)
    return _routing_for(ctx, ctx.profile)


def _chain_root(ctx: Context) -> str | None:
    """The profile at the start of a ``role_arn``/``source_profile`` chain, when the selected profile has one."""
    if ctx.chain is None or ctx.cfg is None or ctx.profile is None:
        return None
    name, seen = ctx.profile, set()
    while "role_arn" in ctx.cfg.profile(name).values and name not in seen:
        seen.add(name)
        name = ctx.cfg.profile(name).values.get("source_profile", "")
    return name if name != ctx.profile and name in ctx.cfg.profiles else None


def _routing_for(ctx: Context, name: str) -> Check:
    """The routing verdict of profile ``name``."""
    from ssocred.adapters import awscli_cache
    from ssocred.model.config import OWN_KEYS

    assert ctx.cfg is not None
    prof = ctx.cfg.profile(name)
    label = section_label("profile", name)
    line = prof.credential_process
    native = [key for key in NATIVE_KEYS if key in prof.values]
    if line and native:
        named = _line_names(line)
        actions = []
        for key in native:
            part = NATIVE_KEYS[key]
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
        return _command_routing(name, label, line)
    if any(key.startswith("ssocred_") for key in prof.values):
        return Check("routing", FAIL, f"{label} has ssocred_* keys but no credential_process, so no SDK asks ssocred",
                     f"add credential_process = ssocred process --profile {shlex.quote(name)} to {label}")
    if native:
        note = "botocore uses its own SSO provider and the token in ~/.aws/sso/cache"
        if ctx.key and ctx.key in awscli_cache.exported_sessions():
            return Check("routing", PASS, f"{note}, which ssocred keeps exported")
        return Check("routing", WARN, f"{note}, which ssocred does not fill",
                     f"run: ssocred login {ctx.selector()} --export-aws-cli-cache, or replace "
                     f"{' and '.join(native)} with credential_process = ssocred process "
                     f"--profile {shlex.quote(name)} and ssocred_account_id/ssocred_role_name")
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
    from ssocred.adapters import aws

    try:
        argv = aws.shell_split(line)
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
    from ssocred.adapters.paths import ssocred_command

    this = " ".join(shlex.quote(word) for word in ssocred_command())
    return (f"write the absolute path in credential_process ({clean(this, 120)} process ...), or put ssocred on "
            "the PATH that SDKs see (pipx install <ssocred checkout>, see the README's Quickstart)")
