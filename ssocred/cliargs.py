"""argparse as ssocred's commands use it: each option at most once, no abbreviations, errors in one line.

Plain argparse keeps the last of a repeated option, so ``--role-name A --role-name B`` would quietly
ask for B; it also takes ``--role`` for ``--role-name``. ``ssocred process`` accepts neither, and
no other command may disagree with it. Errors are one line, ``ssocred: <what>; see: <prog> --help``,
with exit code 2.

Example: ``Parser(prog="ssocred env").parse_args(["--profile", "a", "--profile", "b"])`` exits 2.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from typing import Any, NoReturn

#: Namespace attribute that collects the options seen during one parse (removed before it returns).
_SEEN = "_options_seen"
#: Namespace attribute naming the (sub)command that was given arguments it does not know.
_EXTRAS_OF = "_extras_of"
#: Actions that set a value once; ``append``, ``count`` and ``extend`` are meant to repeat.
_ONCE_ACTIONS = (None, "store", "store_const", "store_true", "store_false")
_NO_VALUE = re.compile(r"argument (\S+): expected one argument")


class _Once(argparse.Action):
    """Refuses a second use of the same option in one command line (mixed into argparse's own actions)."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
        option_string: str | None = None,
    ) -> None:
        if option_string is not None:
            seen: set[int] = vars(namespace).setdefault(_SEEN, set())
            if id(self) in seen:
                parser.error(f"{'/'.join(self.option_strings)} is given more than once")
            seen.add(id(self))
        super().__call__(parser, namespace, values, option_string)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that refuses repeated options and abbreviations and reports errors in one line.

    Subcommand parsers made with ``add_subparsers().add_parser`` are of this class too.
    Example: ``Parser(prog="ssocred").parse_args(["--bogus"])`` prints
    ``ssocred: unrecognized arguments: --bogus; see: ssocred --help`` and exits 2.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        for name in _ONCE_ACTIONS:
            action = self._registry_get("action", name)
            self.register("action", name, type(f"Once{action.__name__}", (_Once, action), {}))

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """argparse's parse, without the record of options seen; notes which (sub)command had extras."""
        parsed, extras = super().parse_known_args(args, namespace)
        vars(parsed).pop(_SEEN, None)
        if extras:
            vars(parsed).setdefault(_EXTRAS_OF, self.prog)  # the innermost command names its own --help
        return parsed, extras

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        """argparse's parse; unknown arguments are reported with the help of the command they were given to."""
        parsed, extras = self.parse_known_args(args, namespace)
        prog = vars(parsed).pop(_EXTRAS_OF, self.prog)
        if extras:
            _fail(self, prog, f"unrecognized arguments: {' '.join(extras)}")
        return parsed

    def error(self, message: str) -> NoReturn:
        """Exit 2 with one line: what is wrong, and where the help is."""
        _fail(self, self.prog, message)


def _fail(parser: argparse.ArgumentParser, prog: str, message: str) -> NoReturn:
    fix = f"see: {prog} --help"
    missing = _NO_VALUE.fullmatch(message)
    if missing:
        flag = missing.group(1).split("/")[-1]
        message = f"{flag} needs a value"
        fix = f"write {flag}=VALUE for a value that starts with '-'; {fix}"
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
    parser.exit(2, f"ssocred: {shown}; {fix}\n")
