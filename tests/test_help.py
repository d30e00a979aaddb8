"""The README and ``--help`` agree: every command's options, the exit codes, the output formats."""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

from ssocred import errors
from ssocred.cli.main import EPILOG, OUTPUT_FORMATS
from ssocred.process_args import USAGE
from tests.support.cli import ssocred_argv

README = Path(__file__).resolve().parents[1] / "README.md"
#: Options every command has, which the README's rows leave out.
UNLISTED = {"-h", "--help"}
_OPTION = re.compile(r"(?<![\w-])--?[A-Za-z][\w-]*")


def _readme() -> str:
    return README.read_text(encoding="utf-8")


@cache
def reference_rows() -> dict[str, str]:
    """The command cell of each row of the README's command reference, by command (``"configure populate"``)."""
    section = _readme().split("## Command reference", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cell = re.match(r"\| `ssocred ([^`]*)` \|", line)
        if cell:
            words = re.match(r"[a-z][a-z-]*(?: [a-z]+)?", cell.group(1))
            assert words is not None
            name = words.group(0) if words.group(0) == "configure populate" else words.group(0).split()[0]
            rows[name] = cell.group(1)
    return rows


def help_text(*command: str) -> str:
    r = subprocess.run([*ssocred_argv(), *command, "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0 and r.stderr == "", (command, r.stderr)
    return r.stdout


def help_options(text: str) -> set[str]:
    """Option strings in the options section of a help text (argparse's layout, and ``process``'s)."""
    section = text.split("\noptions:\n", 1)[1]
    found: set[str] = set()
    for line in section.splitlines():
        if line.startswith("  -"):
            found.update(_OPTION.findall(line.strip().split("  ")[0]))
        elif line and not line.startswith(" "):
            break
    return found


def commands() -> list[str]:
    """Every command ``ssocred --help`` lists, and ``configure populate``."""
    from ssocred.cli.main import build_parser

    listed = re.findall(r"^    ([a-z][a-z-]*)\b", build_parser().format_help(), re.M)
    assert "process" in listed
    return [*listed, "configure populate"]


def test_every_command_has_a_reference_row() -> None:
    assert sorted(reference_rows()) == sorted(commands())


@pytest.mark.parametrize("command", commands())
def test_readme_row_shows_the_options_help_lists(command: str) -> None:
    row = reference_rows()[command]
    assert "..." not in row.replace("ARGS...", ""), f"the row of {command} leaves options out: {row}"
    assert set(_OPTION.findall(row)) == help_options(help_text(*command.split())) - UNLISTED, row


def test_process_help_lists_every_option_of_the_grammar() -> None:
    text = help_text("process")
    assert text == USAGE
    options = {"--profile", "--sso-session", "--account-id", "--role-name", "--login", "-h", "--help"}
    assert help_options(text) == options


def test_output_formats_agree_between_configure_and_populate() -> None:
    for command in (("configure",), ("configure", "populate")):
        text = help_text(*command)
        assert "--output {" + ",".join(OUTPUT_FORMATS) + "}" in text, command
    from ssocred.cli.configure import check_output

    assert all(check_output(fmt) is None for fmt in OUTPUT_FORMATS) and check_output("xml") is not None


def test_exit_code_table_matches_errors() -> None:
    section = _readme().split("### Exit codes", 1)[1].split("\n#", 1)[0]
    table = {int(code) for code in re.findall(r"^\| (\d+) \|", section, re.M)}
    defined = {value for name, value in vars(errors).items() if name.startswith("EXIT_")}
    assert table == defined
    by_class = {cls.exit_code for cls in vars(errors).values()
                if isinstance(cls, type) and issubclass(cls, errors.SsocredError)}
    assert by_class <= defined
    for text in (EPILOG, USAGE):  # the short form in every --help
        assert {int(code) for code in re.findall(r"(\d+) [a-z]", text.split("exit codes:", 1)[1])} == defined


def test_readme_names_no_file_the_repository_lacks() -> None:
    root = README.parent
    for name in re.findall(r"`([\w./-]+\.(?:md|py|toml))`", _readme()):
        assert (root / name).exists() or (root / "ssocred" / name).exists(), name
    for target in re.findall(r"\]\(([^)#]+)\)", _readme()):
        assert target.startswith("http") or (root / target).exists(), target
