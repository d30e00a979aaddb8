"""Sections of ``~/.aws/credentials`` that ssocred exports and keeps fresh; pure text edits.

An exported section carries a marker comment right under its header, so the file itself is the
list of exports: nothing else records them, and a section a person wrote is never touched.
Example: ``exports(put(text, Export("dev", "corp", "111122223333", "Admin"), keys))[0].name == "dev"``
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from ssocred.errors import ConfigError
from ssocred.model.config_syntax import clean
from ssocred.model.sso import RoleCredentials, iso_z, parse_time

#: The comment that marks a section as ssocred's; a JSON object follows it on the same line.
MARKER = "# ssocred-export "
_HEADER = re.compile(r"^\s*\[([^\]]*)\]\s*(?:[#;].*)?$")
@dataclass(frozen=True)
class Export:
    """One exported section: ``Export("dev", "corp", "111122223333", "Admin", expires=1700000000.0)``."""

    name: str
    session: str
    account_id: str
    role_name: str
    expires: float | None = field(default=None, compare=False)

    @property
    def role(self) -> tuple[str, str, str]:
        """``(session, account id, role name)``: ``Export("d", "c", "1", "R").role == ("c", "1", "R")``."""
        return self.session, self.account_id, self.role_name


def check_name(name: str) -> str:
    """A section name for the credentials file, or ConfigError: ``check_name("dev") == "dev"``."""
    if (not name or name != name.strip() or name[0] in "#;" or any(c in name for c in "[]")
            or not name.isprintable()):
        raise ConfigError(f"'{clean(name)}' cannot be a section name of the credentials file",
                          fix="choose a name of letters, digits, '-', '_' or '.'")
    return name


def _blocks(text: str) -> list[tuple[str | None, list[str]]]:
    """The file cut at section headers: ``[(None, preamble lines), ("dev", lines with header), ...]``."""
    blocks: list[tuple[str | None, list[str]]] = [(None, [])]
    for line in text.splitlines(keepends=True):
        match = _HEADER.match(line)
        if match:
            blocks.append((match.group(1).strip(), [line]))
        else:
            blocks[-1][1].append(line)
    return blocks


def _marker(lines: list[str]) -> dict[str, object] | None:
    """The marker of a section (its lines, header first): its first line that is not blank."""
    for line in lines[1:]:
        if not line.strip():
            continue
        if not line.startswith(MARKER):
            return None  # a section someone else wrote
        try:
            value = json.loads(line[len(MARKER):])
        except ValueError:
            return None
        return value if isinstance(value, dict) else None
    return None


def _export(name: str, marker: dict[str, object]) -> Export | None:
    session, account, role = marker.get("session"), marker.get("account_id"), marker.get("role_name")
    if not (isinstance(session, str) and isinstance(account, str) and isinstance(role, str)):
        return None
    expires = marker.get("expires")
    try:
        at = parse_time(expires) if isinstance(expires, str) else None
    except ValueError:
        at = None
    return Export(name, session, account, role, at)


def exports(text: str) -> list[Export]:
    """Every section ssocred exported, in file order: ``exports("") == []``."""
    found = []
    for name, lines in _blocks(text):
        marker = _marker(lines) if name is not None else None
        if name is not None and marker is not None:
            export = _export(name, marker)
            if export is not None:
                found.append(export)
    return found


def section(export: Export, creds: RoleCredentials) -> str:
    """The text of one exported section, header to last key, ending in a newline."""
    marker = {"session": export.session, "account_id": export.account_id, "role_name": export.role_name,
              "expires": iso_z(creds.expiration)}
    return (
        f"[{export.name}]\n"
        f"{MARKER}{json.dumps(marker, ensure_ascii=False)}\n"
        f"# written by ssocred, kept fresh while its daemon runs; remove with: "
        f"ssocred credentials-file --remove --as {export.name}\n"
        f"aws_access_key_id = {creds.access_key_id}\n"
        f"aws_secret_access_key = {creds.secret_access_key}\n"
        f"aws_session_token = {creds.session_token}\n"
    )


def put(text: str, export: Export, creds: RoleCredentials, shown: str = "~/.aws/credentials") -> str:
    """``text`` with ``export``'s section written (replaced in place, or appended); other lines kept.

    A section of that name that ssocred did not write is never replaced: ConfigError says so.
    Example: ``put("", Export("dev", "corp", "111122223333", "Admin"), creds).startswith("[dev]")``
    """
    blocks = _blocks(text)
    new = section(export, creds)
    for i, (name, lines) in enumerate(blocks):
        if name != export.name:
            continue
        if _marker(lines) is None:
            raise ConfigError(f"{shown} already has a [{clean(export.name)}] section that ssocred did not write",
                              fix="choose another name with --as, or remove that section yourself")
        blocks[i] = (name, [new, *_trailing(lines)])
        return "".join("".join(b) for _, b in blocks)
    head = "".join("".join(b) for _, b in blocks)
    if head and not head.endswith("\n"):
        head += "\n"
    if head.strip():
        head += "\n"
    return head + new


def _trailing(lines: list[str]) -> list[str]:
    """The blank lines and comments at the end of a section: they belong to what follows it."""
    tail: list[str] = []
    for line in reversed(lines[1:]):
        if line.startswith(("# written by ssocred", MARKER)) or (line.strip() and line.lstrip()[0] not in "#;"):
            break
        tail.insert(0, line)
    return tail


def drop(text: str, names: set[str]) -> str:
    """``text`` without the exported sections named in ``names``; sections someone else wrote stay.

    Example: ``drop(put("[a]\\nk = v\\n", e, creds), {"dev"}) == "[a]\\nk = v\\n"``
    """
    out = ""
    for name, lines in _blocks(text):
        if name in names and _marker(lines) is not None:
            tail = "".join(_trailing(lines))
            if not tail and out.endswith("\n\n"):
                out = out[:-1]  # the blank line put() added before the section
            out += tail
        else:
            out += "".join(lines)
    return "" if not out.strip() else out
