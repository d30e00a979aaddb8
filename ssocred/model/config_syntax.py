"""Raw reading of ``~/.aws/config`` exactly as botocore's ``configloader`` does it; pure.

Example: ``read_sections("[default]\\nregion = eu-west-1\\n", "~/.aws/config")``
gives ``{"default": {"region": "eu-west-1"}}``.
"""

from __future__ import annotations

import shlex

from ssocred.errors import ConfigError

#: How much of a file path a message shows: enough for any real one, bounded against garbage.
PATH_LIMIT = 400


def clean(text: str, limit: int = 80) -> str:
    """``text`` made safe for a one-line message: ``clean("a\\nb") == "a\\\\nb"``."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def section_label(kind: str, name: str) -> str:
    """How a section is written: ``section_label("profile", "dev") == "[profile dev]"``."""
    if kind == "profile" and name == "default":
        return "[default]"
    return f"[{kind} {clean(name)}]"


def read_sections(text: str, path: str) -> dict[str, dict[str, str]]:
    """Every section with its lowercased keys and raw values; ConfigError names the bad line.

    Example: ``read_sections("[x]\\nA = 1\\n", "f") == {"x": {"a": "1"}}``
    """
    import configparser

    # botocore reads the file with universal newlines; configparser alone splits on "\n" only.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    parser = configparser.RawConfigParser()
    try:
        parser.read_string(text, source=path)
    except configparser.Error as exc:
        raise _syntax_error(exc, text, path) from None
    sections: dict[str, dict[str, str]] = {}
    for section in parser.sections():
        # options() includes [DEFAULT] keys in every section, as botocore sees them.
        values = {option: parser.get(section, option) for option in parser.options(section)}
        for key, value in values.items():
            if value.startswith("\n"):
                _check_nested(value, path, section, key)
        sections[section] = values
    return sections


def _shown(line: str) -> str:
    """A bad line as an error may quote it: the key only, never a value (it may be a secret key).

    Example: ``_shown("aws_secret_access_key = abc") == "aws_secret_access_key = …"``
    """
    key, sep, _value = line.partition("=")
    if not sep:
        key, sep, _value = line.partition(":")
    if sep:
        return f"{clean(key.strip(), 60)} {sep} …"
    # No key: the line may be a pasted secret on its own.
    return f"a line of {len(line.strip())} characters"


def _syntax_error(exc: Exception, text: str, path: str) -> ConfigError:
    import configparser

    lineno = getattr(exc, "lineno", None)
    if isinstance(exc, configparser.ParsingError) and not lineno and exc.errors:
        lineno = exc.errors[0][0]
    lines = text.split("\n")
    line = lines[lineno - 1] if isinstance(lineno, int) and 0 < lineno <= len(lines) else ""
    where = f"{path} line {lineno}"
    if isinstance(exc, configparser.MissingSectionHeaderError):
        if lineno == 1 and line.startswith("\ufeff"):
            return ConfigError(f"{path} starts with a byte order mark", fix="save it as UTF-8 without BOM")
        return ConfigError(
            f"{where} is outside any section: {_shown(line)}",
            fix="put a section header such as [default] or [profile NAME] above it, or delete it",
        )
    if isinstance(exc, configparser.DuplicateSectionError):
        return ConfigError(
            f"{where} repeats the section [{clean(exc.section)}]",
            fix=f"merge the two [{clean(exc.section)}] sections into one",
        )
    if isinstance(exc, configparser.DuplicateOptionError):
        key, section = clean(exc.option), clean(exc.section)
        return ConfigError(
            f"{where} repeats the key {key} in [{section}]", fix=f"keep one {key} in [{section}]"
        )
    if isinstance(exc, configparser.ParsingError):
        return ConfigError(
            f"{where} is neither a [section], a comment nor key = value: {_shown(line)}",
            fix="fix or delete that line (comments start with # or ;)",
        )
    return ConfigError(f"{path} cannot be parsed: {clean(str(exc))}", fix="fix its syntax")


def parse_nested(value: str) -> dict[str, str]:
    """An indented block as botocore reads it: ``parse_nested("\\n a = 1") == {"a": "1"}``.

    Raises ValueError on a line without ``=``, as botocore does.
    """
    parsed: dict[str, str] = {}
    for raw in value.splitlines():
        line = raw.strip()
        if not line:
            continue
        if "=" not in line:
            raise ValueError(line)
        key, val = line.split("=", 1)
        parsed[key.strip()] = val.strip()
    return parsed


def _check_nested(value: str, path: str, section: str, key: str) -> None:
    try:
        parse_nested(value)
    except ValueError as exc:
        raise ConfigError(
            f"{path}: {clean(key)} in [{clean(section)}] is an indented block"
            f" with a line that has no '=': {clean(str(exc))}",
            fix=f"write every indented line under {clean(key)} as name = value",
        ) from None


def botocore_view(value: str) -> str | dict[str, str]:
    """A value as botocore holds it, for comparisons: ``botocore_view("\n a = 1") == {"a": "1"}``."""
    if value.startswith("\n"):
        try:
            return parse_nested(value)
        except ValueError:
            pass  # only a hand-built config gets here; parsed text was checked already
    return value


def section_name(header: str) -> str | None:
    """The name in a ``[kind NAME]`` header, botocore's way: ``section_name('profile "a b"') == "a b"``.

    None when the header does not split into exactly two shell words (botocore skips it).
    """
    try:
        parts = shlex.split(header)
    except ValueError:
        return None
    return parts[1] if len(parts) == 2 else None
