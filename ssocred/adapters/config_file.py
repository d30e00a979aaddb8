"""``~/.aws/config`` on disk: read as botocore reads it, and edited keeping comments, order and other sections.

``load()`` reads and parses the file (a missing file is an empty config, as for botocore).

Every edit runs under a file lock, re-reads the file, and replaces it atomically (temp file,
fsync, rename) with its mode kept, so readers see the old file or the new one, never a torn one.
Example: ``write_sso_session("corp", "https://d-1234567890.awsapps.com/start", "us-east-1", ("sso:account:access",))``
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ssocred.adapters import paths
from ssocred.adapters.paths import display_path
from ssocred.errors import ConfigError, UsageError
from ssocred.model.config import DIRECTORY, AwsConfig, parse, unusable_fix
from ssocred.model.config_syntax import clean, section_name
from ssocred.model.naming import Target
from ssocred.process_args import from_line

if TYPE_CHECKING:
    from configupdater import ConfigUpdater

T = TypeVar("T")
MANAGED_KEY = "ssocred_managed"
#: A ``key = value`` line whose value must not be shown (keys with "secret" or "token" in the name).
_SECRET_LINE = re.compile(r"^([ +-]?\s*[\w.-]*(?:secret|token)[\w.-]*\s*[=:]\s*)(\S.*?)?(\r?\n?)$", re.I)
_LOCK_TIMEOUT = 30.0


@dataclass
class Changes:
    """What a populate edit did, by profile name (no secrets): ``Changes(added=["dev.Admin"])``."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    #: Names held by a profile ssocred does not manage: left alone, with that profile's name.
    skipped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Managed:
    """A profile ssocred generated: its section name and the target named by its credential_process."""

    section: str
    name: str
    session: str
    account_id: str | None
    role_name: str | None


def config_path() -> Path:
    """The file edits go to: ``$AWS_CONFIG_FILE`` or ``~/.aws/config``, symlinks followed."""
    path = paths.aws_config_file()
    # Replacing a symlink (dotfile managers) would turn it into a plain file: edit what it points at.
    return Path(os.path.realpath(path))


def _parse(text: str, shown: str) -> ConfigUpdater:
    from configupdater import ConfigUpdater
    from configupdater.parser import ParsingError

    updater = ConfigUpdater(strict=False)
    try:
        updater.read_string(text, source=shown)
    except (ParsingError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"cannot edit {shown}: {first}", fix="fix the file's syntax first") from None
    return updater


def managed_profiles(updater: ConfigUpdater) -> list[Managed]:
    """Profiles carrying ``ssocred_managed = SESSION``, in file order, with the target their line names.

    The line is read with the one grammar; one that names no account and role (unreadable, or
    edited to ``--profile``) gives ``account_id = role_name = None``.
    Example: ``managed_profiles(updater)[0].role_name == "Admin"``
    """
    out = []
    for section in updater.iter_sections():
        name = section_name(section.name) if section.name.startswith("profile") else None
        if name is None or not section.has_option(MANAGED_KEY):
            continue
        session = _value(section, MANAGED_KEY) or ""
        try:
            request = from_line(_value(section, "credential_process") or "")
        except (ValueError, UsageError):
            request = None
        named = request.named() if request is not None else None
        account, role = (named[1], named[2]) if named is not None else (None, None)
        out.append(Managed(section.name, name, session, account, role))
    return out


def managed_targets(session: str, path: Path | None = None) -> set[tuple[str, str]]:
    """``(account id, role)`` of every profile generated for ``session``: ``{("111122223333", "Admin")}``."""
    file = path or config_path()
    shown = display_path(file)
    return {(m.account_id, m.role_name) for m in managed_profiles(_parse(_read(file, shown), shown))
            if m.session == session and m.account_id is not None and m.role_name is not None}


def _value(section: Any, key: str) -> str | None:
    """The stripped value of ``key`` in a configupdater section, None when absent."""
    option = section.get(key) if section.has_option(key) else None
    return None if option is None else (option.value or "").strip()


def _header(name: str) -> str:
    return "default" if name == "default" else f"profile {name}"


def _set(section: Any, values: Mapping[str, str]) -> bool:
    changed = False
    for key, value in values.items():
        if _value(section, key) != value:
            section[key] = value
            changed = True
    return changed


def populate_text(
    text: str, shown: str, session: str, desired: Mapping[str, tuple[Target, Mapping[str, str]]], *, prune: bool
) -> tuple[str, Changes]:
    """The config text after writing ``desired`` profiles of ``session``, and what changed; pure.

    Example: ``populate_text("", "config", "corp", {"dev.Admin": (target, values)}, prune=False)``
    """
    if text and not text.endswith("\n"):
        text += "\n"
    updater = _parse(text, shown)
    changes = Changes()
    existing = {s.name: s for s in updater.iter_sections()}
    mine = [m for m in managed_profiles(updater) if m.session == session]
    by_target = {(m.account_id, m.role_name): m for m in mine}
    wanted_targets = {(t.account_id, t.role_name) for t, _ in desired.values()}
    claimed: set[str] = set()
    desired_names = {_header(n) for n in desired}
    new_blocks: list[str] = []
    for name, (target, values) in desired.items():
        header = _header(name)
        section = existing.get(header)
        if section is not None:
            if _value(section, MANAGED_KEY) != session:
                changes.skipped.append(name)
                continue
            claimed.add(header)
            (changes.updated if _set(section, values) else changes.unchanged).append(name)
            continue
        old = by_target.get((target.account_id, target.role_name))
        if old is not None and old.section not in claimed and _header(old.name) not in desired_names:
            # The template changed: rename in place rather than leave a stale duplicate behind.
            moved = updater[old.section]
            moved.name = header
            claimed.add(header)
            _set(moved, values)
            changes.renamed.append((old.name, name))
            continue
        new_blocks.append(_block(header, values))
        changes.added.append(name)
    if prune:
        for m in mine:
            if m.section in claimed or (m.account_id is not None and (m.account_id, m.role_name) in wanted_targets):
                continue
            updater.remove_section(m.section)
            changes.removed.append(m.name)
    return _append(str(updater), new_blocks), changes


def sso_session_text(text: str, shown: str, name: str, values: Mapping[str, str]) -> str:
    """The config text with ``[sso-session NAME]`` holding ``values`` (added or updated in place); pure."""
    return _upsert(text, shown, f"sso-session {name}", values)


def profile_text(text: str, shown: str, name: str, values: Mapping[str, str]) -> str:
    """The config text with profile ``name`` holding ``values`` (added or updated in place); pure."""
    return _upsert(text, shown, _header(name), values)


def _upsert(text: str, shown: str, header: str, values: Mapping[str, str]) -> str:
    if text and not text.endswith("\n"):
        text += "\n"
    updater = _parse(text, shown)
    if updater.has_section(header):
        _set(updater[header], values)
        return str(updater)
    return _append(str(updater), [_block(header, values)])


def sso_session_values(start_url: str, region: str, scopes: tuple[str, ...]) -> dict[str, str]:
    """The keys of an ``[sso-session]``: ``sso_session_values(url, "us-east-1", ("sso:account:access",))``."""
    values = {"sso_start_url": start_url, "sso_region": region}
    if scopes:
        values["sso_registration_scopes"] = ", ".join(scopes)
    return values


def section_text(header: str, values: Mapping[str, str]) -> str:
    """A section as written: ``section_text("sso-session corp", {"sso_region": "eu-west-1"})``."""
    return _block(header, values)


def _block(header: str, values: Mapping[str, str]) -> str:
    return f"[{header}]\n" + "".join(f"{k} = {v}\n" for k, v in values.items())


def _append(text: str, blocks: list[str]) -> str:
    """``blocks`` after ``text``, each section separated from the one before by a blank line."""
    if not blocks:
        return text
    if text and not text.endswith("\n\n"):
        text += "\n" if text.endswith("\n") else "\n\n"
    return text + "\n".join(blocks)


def diff(old: str, new: str, shown: str) -> str:
    """A unified diff of two config texts (empty when equal); values of secret keys are masked.

    Example: a context line ``aws_secret_access_key = abc`` is shown as ``aws_secret_access_key = ****``.
    """
    lines = difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                 fromfile=f"{shown} (now)", tofile=f"{shown} (after)")
    return "".join(_SECRET_LINE.sub(r"\1****\3", line) for line in lines)


def edit(change: Callable[[str, str], tuple[str, T]], *, dry_run: bool = False,
         path: Path | None = None, mode: int | None = None) -> tuple[str, str, T]:
    """Apply ``change(text, shown) -> (new_text, result)`` to the config under its lock.

    Returns ``(old_text, new_text, result)``. The file is written only when the text changed and
    not ``dry_run``; an unchanged file is not touched at all. ``mode`` replaces the file's own.
    """
    from ssocred.adapters import locks

    file = path or config_path()
    shown = display_path(file)
    digest = hashlib.sha256(str(file).encode()).hexdigest()[:16]
    lock = locks.Lock(paths.lock_dir() / f"aws-config-{digest}.lock")
    with locks.held(lock, f"the config file {shown}", timeout=_LOCK_TIMEOUT):
        old = _read(file, shown)
        new, result = change(old, shown)
        if new != old and not dry_run:
            _validate(new, shown)
            _write(file, shown, new, mode)
        return old, new, result


def write_sso_session(name: str, start_url: str, region: str, scopes: tuple[str, ...]) -> bool:
    """Add or update ``[sso-session NAME]``; True when the file changed.

    Example: ``write_sso_session("corp", "https://d-1.awsapps.com/start", "us-east-1", ("sso:account:access",))``
    """
    values = sso_session_values(start_url, region, scopes)
    old, new, _ = edit(lambda text, shown: (sso_session_text(text, shown, name, values), None))
    return old != new


def _read(file: Path, shown: str) -> str:
    try:
        return file.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return ""
    except UnicodeDecodeError:
        raise ConfigError(f"{shown} is not valid UTF-8", fix="save the file as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {shown}: {exc.strerror}", fix=f"check the permissions of {shown}") from None


def _validate(text: str, shown: str) -> None:
    """Never write a file botocore could not read: parse the result the way botocore does."""
    from ssocred.model.config_syntax import read_sections

    read_sections(text, shown)


def _write(file: Path, shown: str, text: str, mode: int | None = None) -> None:
    from ssocred.adapters.paths import atomic_write

    try:
        mode = file.stat().st_mode & 0o777 if mode is None else mode
    except FileNotFoundError:
        mode = 0o600
    try:
        atomic_write(file, text.encode("utf-8"), mode)
    except OSError as exc:
        raise ConfigError(f"cannot write {shown}: {exc.strerror}", fix=f"check the permissions of {file.parent}") \
            from None


def load(path: Path | None = None) -> AwsConfig:
    """Read and parse the AWS config file: ``load().profile("dev")``; no file gives an empty config.

    Like botocore, anything that is not a regular file is no config at all; a directory is
    remembered in ``AwsConfig.unusable`` so that errors can name it.
    """
    file = path if path is not None else paths.aws_config_file()
    shown = display_path(file)
    try:
        data = read_config_bytes(file)
    except IsADirectoryError:
        return AwsConfig(path=shown, unusable=DIRECTORY)
    if data is None:
        return AwsConfig(path=shown)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        lineno = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{shown} line {lineno} is not valid UTF-8", fix="save the file as UTF-8") from None
    return parse(text, shown)


def read_config_bytes(file: Path) -> bytes | None:
    """The bytes of a config file; None when nothing readable as one is there (botocore's view).

    Raises IsADirectoryError for a directory (the caller decides how to name it) and ConfigError
    when the file exists but cannot be read, or the path is a symlink loop. Never opens a FIFO or
    a device, which could block. Example: ``read_config_bytes(Path("/nonexistent")) is None``
    """
    import errno
    import stat

    shown = display_path(file)
    try:
        mode: int | None = file.stat().st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _loop_error(shown) from None
        mode = None  # nothing there, or not for us to see: the read below says which
    if mode is not None and stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "Is a directory", str(file))
    if mode is not None and not stat.S_ISREG(mode):
        return None  # e.g. AWS_CONFIG_FILE=/dev/null, the usual way to turn the config off
    try:
        return file.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _loop_error(shown) from None
        raise ConfigError(
            f"cannot read {shown}: {clean(exc.strerror or str(exc))}",
            fix=f"make it readable (chmod u+r {shown})",
        ) from None


def _loop_error(shown: str) -> ConfigError:
    return ConfigError(f"{shown} is a symbolic link that leads back to itself (a loop)",
                       fix=f"point the link at your real config file (ls -l {shown}), or replace it with the file")


def file_problem(file: Path) -> ConfigError | None:
    """Why the config path holds no usable file although something is there, else None.

    A missing file is no problem here (botocore runs without one). Example:
    ``file_problem(Path.home()).message == "~ is a directory, not a file"``
    """
    shown = display_path(file)
    try:
        read_config_bytes(file)
    except IsADirectoryError:
        return ConfigError(f"{shown} {DIRECTORY}", fix=unusable_fix(shown))
    except ConfigError as exc:
        return exc
    if file.is_symlink() and not file.exists():
        target = clean(os.readlink(file), 120)
        return ConfigError(f"{shown} is a symbolic link to {target}, which does not exist",
                           fix="point the link at your real config file, or remove it and run: ssocred configure")
    if file.exists() and not file.is_file():
        return ConfigError(f"{shown} is not a regular file (a device or a pipe), so botocore reads no config from it",
                           fix="point AWS_CONFIG_FILE at your config file, or unset it")
    return None
