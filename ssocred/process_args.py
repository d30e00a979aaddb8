"""The one grammar of ``ssocred process`` arguments: parse argv, read and write credential_process lines.

Every reader of these arguments uses it: the daemon client (``ssocred.process.client``), the no-daemon
path and the daemon (``ssocred.process``), ``env``/``exec``, config reading
(``AwsConfig.ssocred_target``), ``configure populate`` and ``doctor``. It runs on every SDK
credential lookup, so it imports nothing when loaded (``ssocred.errors`` only to refuse
arguments, ``shlex`` only to read or write a line).

The rules: ``--profile P`` alone, or all of ``--sso-session S --account-id A --role-name R``;
``--login`` with either. A value follows its flag as the next word or as ``--flag=value``; a next
word that starts with ``-`` is never taken as a value, so ``--role-name --login`` is a usage
error and a role named ``-Admin`` is written ``--role-name=-Admin``. Each option is given at most
once; values are never empty; an account id is 12 digits.

Example: ``parse(["--profile", "dev"]) == Request(profile="dev")``
"""

PROG = "ssocred process"
USAGE = """\
usage: ssocred process (--profile P | --sso-session S --account-id A --role-name R) [--login]

Print role credentials as credential_process JSON (Version 1); used as
credential_process = ssocred process ... in ~/.aws/config.

options:
  --profile P      a profile in ~/.aws/config that names the target (its ssocred_session,
                   ssocred_account_id and ssocred_role_name keys, or its credential_process line)
  --sso-session S  an [sso-session S] section in ~/.aws/config
  --account-id A   the AWS account id (12 digits)
  --role-name R    the role (permission set) name
  --login          when a login is required, run it on the terminal (/dev/tty) instead of failing
  -h, --help       show this help and exit

Each option is given at most once. A value that starts with '-' is written with '=',
e.g. --role-name=-Admin.

exit codes: 0 ok, 1 login required, 2 usage, 3 config error, 4 access denied,
5 network or service error, 6 credential store unavailable, 130 interrupted
"""
#: Flags that take a value, and the ``Request`` field each one sets.
VALUE_FLAGS = {"--profile": "profile", "--sso-session": "session", "--account-id": "account", "--role-name": "role"}
_TARGET_FLAGS = ("--sso-session", "--account-id", "--role-name")


class Request:
    """What ``ssocred process`` is asked for: a profile, or an SSO session, account and role.

    Example: ``Request(session="corp", account="111122223333", role="Admin").named()
    == ("corp", "111122223333", "Admin")``
    """

    # A plain class: dataclasses and namedtuple cost the hot path milliseconds to import.
    __slots__ = ("account", "help", "login", "profile", "role", "session")

    def __init__(
        self,
        profile: str | None = None,
        session: str | None = None,
        account: str | None = None,
        role: str | None = None,
        login: bool = False,
        help: bool = False,
    ) -> None:
        self.profile = profile
        self.session = session
        self.account = account
        self.role = role
        self.login = login
        self.help = help

    def named(self) -> tuple[str, str, str] | None:
        """``(session, account, role)`` when given directly, else None: ``Request(profile="dev").named() is None``."""
        if self.session is None or self.account is None or self.role is None:
            return None
        return self.session, self.account, self.role

    def _key(self) -> tuple[str | None, str | None, str | None, str | None, bool, bool]:
        return self.profile, self.session, self.account, self.role, self.login, self.help

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Request) and self._key() == other._key()

    def __repr__(self) -> str:
        names = ("profile", "session", "account", "role", "login", "help")
        pairs = zip(names, self._key(), strict=True)
        shown = (f"{name}={value!r}" for name, value in pairs if value is not None and value is not False)
        return f"Request({', '.join(shown)})"


def parse(argv: list[str], prog: str = PROG) -> Request:
    """The request ``argv`` makes, or UsageError naming the first problem and the fix.

    ``prog`` names the command in messages (``"ssocred env"``). Example:
    ``parse(["--sso-session", "corp", "--account-id", "111122223333", "--role-name=-Admin"]).role == "-Admin"``
    """
    values: dict[str, str] = {}
    login = False
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg in ("-h", "--help"):
            return Request(help=True)
        flag, eq, value = arg.partition("=")
        if flag == "--login":
            if eq:
                raise _usage("--login takes no value", fix=f"write --login alone; see: {prog} --help")
            if login:
                raise _repeated(flag)
            login = True
            continue
        if flag not in VALUE_FLAGS:
            raise _usage(f"unknown argument '{_shown(arg)}' for {prog}", fix=f"see: {prog} --help")
        if not eq:
            if i >= len(argv) or argv[i].startswith("-"):
                raise _usage(f"{flag} needs a value",
                                 fix=f"write {flag}=VALUE for a value that starts with '-'; see: {prog} --help")
            value = argv[i]
            i += 1
        if flag in values:
            raise _repeated(flag)
        values[flag] = value
    return build(values.get("--profile"), values.get("--sso-session"), values.get("--account-id"),
                 values.get("--role-name"), login=login, prog=prog)


def build(
    profile: str | None = None,
    session: str | None = None,
    account: str | None = None,
    role: str | None = None,
    *,
    login: bool = False,
    prog: str = PROG,
) -> Request:
    """A checked request from option values (None: not given), e.g. from argparse; UsageError otherwise.

    Example: ``build(profile="dev") == Request(profile="dev")``; ``build(role="")`` raises.
    """
    given = {"--profile": profile, "--sso-session": session, "--account-id": account, "--role-name": role}
    for flag, value in given.items():
        if value == "":
            raise _usage(f"{flag} is empty", fix=f"give {flag} a value; see: {prog} --help")
    if profile is not None:
        if session is not None or account is not None or role is not None:
            raise _usage("--profile cannot be combined with --sso-session/--account-id/--role-name",
                             fix=f"give either --profile or the other three; see: {prog} --help")
        return Request(profile=profile, login=login)
    missing = [flag for flag in _TARGET_FLAGS if given[flag] is None]
    if missing:
        raise _usage(f"{prog} needs {', '.join(missing)} (or --profile)", fix=f"see: {prog} --help")
    if account is not None and not is_account_id(account):
        raise _usage(f"--account-id '{_shown(account)}' is not an AWS account id",
                         fix="an account id is 12 digits, e.g. 111122223333")
    return Request(session=session, account=account, role=role, login=login)


def is_account_id(text: str) -> bool:
    """Whether ``text`` is an AWS account id, 12 digits: ``is_account_id("111122223333")``."""
    return len(text) == 12 and text.isascii() and text.isdigit()


def to_argv(request: Request) -> list[str]:
    """The arguments that ``parse`` reads back as ``request``.

    Example: ``to_argv(Request(session="c", account="111122223333", role="-A"))
    == ["--sso-session", "c", "--account-id", "111122223333", "--role-name=-A"]``
    """
    if request.help:
        raise ValueError("a request for help has no arguments to write")
    words: list[str] = []
    for flag, value in (("--profile", request.profile), ("--sso-session", request.session),
                        ("--account-id", request.account), ("--role-name", request.role)):
        if value is not None:
            words += [f"{flag}={value}"] if value.startswith("-") else [flag, value]
    if request.login:
        words.append("--login")
    return words


def to_line(request: Request, command: str = "ssocred") -> str:
    """A ``credential_process`` line that runs ``command`` (already shell-quoted) for ``request``.

    Example: ``to_line(Request(profile="dev")) == "ssocred process --profile dev"``; ValueError
    for a value with a line break, which no config line can hold.
    """
    import shlex

    argv = to_argv(request)
    if any(c in word for word in argv for c in "\r\n\0"):
        raise ValueError("a credential_process line cannot hold a line break")
    return " ".join([command, "process", *(shlex.quote(word) for word in argv)])


def from_line(line: str) -> Request | None:
    """The request a ``credential_process`` line makes; None when it does not run ``ssocred process``.

    The arguments are those after ``ssocred process`` (any path to ``ssocred``, or ``python -m
    ssocred``). ValueError when the line cannot be split into words as botocore splits it,
    UsageError when ``ssocred process`` would refuse its arguments. Example:
    ``from_line("/usr/bin/ssocred process --profile=dev --login") == Request(profile="dev", login=True)``
    """
    import shlex

    words = shlex.split(line)
    for i in range(len(words) - 1):
        if words[i + 1] == "process" and _is_ssocred(words[i]):
            return parse(words[i + 2 :])
    return None


def _is_ssocred(word: str) -> bool:
    """``_is_ssocred("/opt/bin/ssocred")``, also ``ssocred.exe`` and the module of ``python -m ssocred``."""
    name = word.replace("\\", "/").rsplit("/", 1)[-1]
    return name.lower().removesuffix(".exe") == "ssocred"


def _repeated(flag: str) -> Exception:
    return _usage(f"{flag} is given more than once", fix="give each option once")


def _usage(message: str, fix: str) -> Exception:
    """The UsageError to raise; ``ssocred.errors`` is imported only when arguments are refused."""
    from ssocred.errors import UsageError

    return UsageError(message, fix=fix)


def _shown(text: str, limit: int = 60) -> str:
    """``text`` as a message may quote it: printable, on one line, shortened."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"
