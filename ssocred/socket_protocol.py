"""The daemon socket: where it and the locks live, who may trust it, and its wire protocol.

``ssocred process`` looks for the daemon's socket before importing anything else, so this
module must stay free of imports beyond ``_socket``, ``os`` and ``sys`` (``stat`` is loaded by
``os`` itself); ``json`` and ``socket`` are too slow to import here, so the request line is built
and the reply parsed by hand.
Nothing here creates a file or follows a link into a place another user chose:
``ssocred.adapters.paths.runtime_dir`` makes the directory chosen here, by the same rules.

Wire protocol, version 2 (one connection per request, the daemon checks the peer's uid first):

* request, one line of JSON: ``{"v": 2, "argv": [...], "config": "<AWS config path>",
  "service": "<keyring service>", "backend": "<$PYTHON_KEYRING_BACKEND>", "cwd": "<working
  directory>"}``; a relative config path is taken from ``cwd``. ``"op": "refresh"`` with
  ``"session"``, ``"seen"`` (the fingerprint of the token the client found stale) and ``"force"``
  asks the daemon to refresh an SSO token instead (``ssocred.usecases.tokens``); its answer is
  ``{"fingerprint": ...}`` of the token the daemon now holds, or with an exit code
  ``{"message": ..., "fix": ...}``;
* ``"op": "container"`` with ``"session"``, ``"account"``, ``"role"`` asks the daemon to serve that role
  on its container credentials endpoint (``ssocred.usecases.container``, ``ssocred.daemon.container``);
  its answer is ``{"url": ..., "token": ...}`` (the token is a secret: the daemon never logs it), or with
  an exit code ``{"message": ..., "fix": ...}``. ``"op": "container-revoke"`` with ``"session"`` and
  ``"account"``/``"role"`` (both null: every role of the session) answers ``{"revoked": <count>}``;
  ``"op": "forward-reload"`` makes the daemon listen for the forwards saved now (``{"listening": [names]}``);
* on a forward's socket (``ssocred.daemon.forwarding``), the only request is ``"op": "role"`` with
  ``"session"``, ``"start_url"``, ``"region"`` (from the remote host's config; may be empty),
  ``"account"`` and ``"role"``: the client has resolved its profile itself, and the daemon reads no
  file of the client's. The answer is ``ssocred process``'s, or an exit code and one line;
* ``"op": "store"`` answers ``{"store": "keyring" | "memory", "pid": <the daemon's pid>}``: where the
  daemon keeps its secrets. A daemon started with ``--store memory`` answers every request of its own
  service whatever the client's backend, and also ``"op": "item-get"`` (``"username"``; answer
  ``{"value": <text or null>}``), ``"item-set"`` (``"username"``, ``"value"``; answer ``{"stored": true}``)
  and ``"item-delete"`` (``"username"``; answer ``{"deleted": <bool>}``) on the items of its service,
  ``"service"`` naming it, which clients without an OS keyring use as theirs
  (``ssocred.adapters.memory_keyring``); a value is a secret and is never logged;
* reply: any number of ``+`` bytes (the daemon is alive and working: one within 0.1 s of the
  request unless the answer itself comes sooner, then one every 0.25 s), then ``<code>
  <length>\n`` and ``length`` bytes. Code 0: the exact stdout of ``ssocred process``; 1 to 255:
  its exit code and the one stderr line; ``FALLBACK`` (-1): the client must run the request
  itself (another keyring service or backend, a ``--login`` that needs the terminal, a refused
  peer, an unknown protocol version), the bytes saying why. A reply shorter than ``length`` (the
  daemon died) is a fall-back too: nothing is written.

A daemon that stays silent for ``SILENCE_TIMEOUT`` (stopped with SIGSTOP, or frozen) costs a
caller about a second before it falls back; a slow answer with keep-alive bytes is waited for.

Example: ``socket_path()`` is ``$XDG_RUNTIME_DIR/ssocred/daemon.sock`` on a systemd machine.
"""

import _socket
import os
import stat
import sys

APP = "ssocred"
#: The keyring service ssocred's items live under unless ``$SSOCRED_KEYRING_SERVICE`` names another.
DEFAULT_SERVICE = APP
SOCKET_NAME = "daemon.sock"
#: The longest path a Unix socket can have: ``sun_path`` holds 108 bytes on Linux, 104 on macOS
#: and the BSDs, the terminating NUL included.
MAX_SOCKET_PATH = 107 if sys.platform.startswith("linux") else 103

#: What ``entry_state`` finds at a path.
MISSING = "missing"
OURS = "ours"
PLANTED = "planted"

#: ``(base, names under it, whether the base must already exist and be private)``.
Candidate = tuple[str, tuple[str, ...], bool]

PROTOCOL_VERSION = 2
#: Where a daemon keeps secrets (the answer to ``"op": "store"``): the OS keyring, or its own memory.
STORE_KEYRING = "keyring"
STORE_MEMORY = "memory"
OP_STORE = "store"
OP_ITEM_GET = "item-get"
OP_ITEM_SET = "item-set"
OP_ITEM_DELETE = "item-delete"
#: Reply code that sends the client to the no-daemon path.
FALLBACK = -1
#: The byte a working daemon sends while it prepares an answer.
KEEPALIVE = b"+"
CONNECT_TIMEOUT = 0.2
#: Longest silence (no keep-alive, no answer) before the daemon is taken for stopped.
SILENCE_TIMEOUT = 1.0
#: Longest wait for an answer with keep-alives: the daemon's own network calls are bounded well below.
REPLY_TIMEOUT = 300.0
_MAX_REPLY = 1 << 16
#: Sockets whose daemon stayed silent once in this process: asked no more, so it costs a caller one wait.
_silent: set[str] = set()


def keyring_service() -> str:
    """``$SSOCRED_KEYRING_SERVICE``, else ``"ssocred"``: the client and the daemon must agree on it."""
    return os.environ.get("SSOCRED_KEYRING_SERVICE") or DEFAULT_SERVICE


def runtime_dir() -> str:
    """The directory a daemon would use, given what exists now; creates nothing.

    ``$SSOCRED_RUNTIME_DIR`` as given, else the first of ``candidates()`` whose base is usable
    and whose entry is missing or a directory of this user's (an entry someone else planted is
    passed over). Example: ``/run/user/1000/ssocred``, or ``~/.cache/ssocred/run`` under cron.
    """
    override = os.environ.get("SSOCRED_RUNTIME_DIR")
    if override:
        return override
    last = ""
    for base, names, strict in candidates():
        last = os.path.join(base, *names)
        if usable_base(base, strict) and entry_state(base, names) != PLANTED:
            return last
    return last  # nothing usable: paths.runtime_dir says so, and trusted() refuses it


def candidates() -> list[Candidate]:
    """The default runtime dir's places, best first, as ``(base, names, base must be private)``.

    Example: ``[("/run/user/1000", ("ssocred",), True), ("/home/me/.cache", ("ssocred", "run"), False)]``
    """
    found: list[Candidate] = []
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    if os.path.isabs(xdg):
        found.append((os.path.normpath(xdg), (APP,), True))
    home = os.path.expanduser("~")
    home_known = os.path.isabs(home)
    if sys.platform == "darwin" and home_known:
        found.append((os.path.join(home, "Library", "Caches", "TemporaryItems"), (APP,), False))
    found.append((f"/run/user/{os.getuid()}", (APP,), True))
    cache = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(cache):
        cache = os.path.join(home, ".cache") if home_known else ""
    if cache:
        found.append((os.path.normpath(cache), (APP, "run"), False))
    return found


def usable_base(base: str, strict: bool) -> bool:
    """Whether ssocred may keep its directory in ``base``.

    ``strict`` (``$XDG_RUNTIME_DIR``, ``/run/user/<uid>``): a real directory of this user that
    nobody else can enter. Otherwise (a cache dir in the user's home): this user's directory,
    possibly through a link of their own, that no stranger can write; or missing, where
    ``creatable`` allows making it. Example: ``usable_base("/run/user/1000", True)``
    """
    try:
        st = os.lstat(base)
    except FileNotFoundError:
        return not strict and creatable(base)
    except OSError:
        return False
    if strict:
        return _private(st)
    if stat.S_ISLNK(st.st_mode):
        # The user's own link (~/.cache on another disk, say): only they could have made it there.
        if st.st_uid != os.getuid():
            return False
        try:
            st = os.stat(base)
        except OSError:
            return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o002


def entry_state(base: str, names: tuple[str, ...]) -> str:
    """``MISSING``, ``OURS`` (every level a real directory of this user) or ``PLANTED`` (anything else).

    Example: ``entry_state("/run/user/1000", ("ssocred",)) == OURS``
    """
    path = base
    for name in names:
        path = os.path.join(path, name)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return MISSING
        except OSError:
            return PLANTED
        if not (stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid()):
            return PLANTED
    return OURS


def creatable(path: str) -> bool:
    """Whether ssocred may create the missing part of ``path``: its nearest existing ancestor is
    this user's or root's, and strangers cannot swap entries in it (not world-writable unless sticky).

    Example: ``creatable("/tmp/new/dir")`` is True (``/tmp`` is sticky).
    """
    existing = nearest_existing(path)
    try:
        st = os.lstat(existing)
        if stat.S_ISLNK(st.st_mode):
            if st.st_uid not in (0, os.getuid()):
                return False
            st = os.stat(existing)
    except OSError:
        return False
    world_writable = st.st_mode & 0o002 and not st.st_mode & stat.S_ISVTX
    return stat.S_ISDIR(st.st_mode) and st.st_uid in (0, os.getuid()) and not world_writable


def nearest_existing(path: str) -> str:
    """The longest existing prefix of ``path``, made absolute (a link counts as existing).

    Example: ``nearest_existing("/tmp/a/b") == "/tmp"`` when ``/tmp/a`` does not exist.
    """
    existing = os.path.abspath(path)
    while not os.path.lexists(existing):
        parent = os.path.dirname(existing)
        if parent == existing:
            break
        existing = parent
    return existing


def trusted(path: str) -> bool:
    """Whether ``path`` is a real directory of this user that nobody else can enter or write.

    The client checks this before trusting a socket in it: a socket in a directory another user
    could write, or reached through a link, could be anyone's. Example: ``trusted(runtime_dir())``
    """
    try:
        return _private(os.lstat(path))
    except OSError:
        return False


def private(path: str) -> bool:
    """The same as ``trusted(path)``: ``private(runtime_dir())``."""
    return trusted(path)


def socket_path() -> str:
    """The daemon's Unix socket: ``runtime_dir()/daemon.sock``."""
    return os.path.join(runtime_dir(), SOCKET_NAME)


def trusted_socket() -> str | None:
    """The daemon's socket when its directory is ``trusted``, else None (ask no daemon).

    Example: ``path = trusted_socket()`` then ``sock.connect(path)`` when it is not None.
    """
    directory = runtime_dir()
    return os.path.join(directory, SOCKET_NAME) if trusted(directory) else None


def bindable(path: str) -> str:
    """``path`` itself when a Unix socket fits there; ``ServiceError`` naming the fix when it is too long.

    Example: ``bindable("/run/user/1000/ssocred/daemon.sock")``
    """
    size = len(os.fsencode(path))
    if size <= MAX_SOCKET_PATH:
        return path
    from ssocred.errors import ServiceError

    raise ServiceError(f"cannot listen on {path}: {size} bytes, more than a Unix socket path may have "
                       f"({MAX_SOCKET_PATH})", fix="set SSOCRED_RUNTIME_DIR to a short, writable path")


def _private(st: os.stat_result) -> bool:
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077


def request_line(argv: list[str]) -> str:
    """The request for ``argv`` as one line of JSON, with the client's config path and service.

    Example: ``request_line(["--profile", "dev"])`` starts ``{"v": 1, "argv": ["--profile", "dev"]``.
    """
    config = os.path.expandvars(os.path.expanduser(os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config"))
    service = keyring_service()
    backend = os.environ.get("PYTHON_KEYRING_BACKEND", "")
    try:
        cwd = os.getcwd()
    except OSError:  # a removed working directory: only a relative config path needs it
        cwd = ""
    args = ", ".join(quote(a) for a in argv)
    return (
        f'{{"v": {PROTOCOL_VERSION}, "argv": [{args}], "config": {quote(config)}, '
        f'"service": {quote(service)}, "backend": {quote(backend)}, "cwd": {quote(cwd)}}}\n'
    )


def role_request(session: str, account: str, role: str, start_url: str = "", region: str = "") -> str:
    """The request for one SSO role on a forwarded socket, as one line of JSON (empty start URL: match by name).

    Example: ``role_request("corp", "111122223333", "Dev")`` starts ``{"v": 2, "op": "role", "session": "corp"``.
    """
    fields = (("session", session), ("start_url", start_url), ("region", region), ("account", account),
              ("role", role))
    body = ", ".join(f'"{key}": {quote(value)}' for key, value in fields)
    return f'{{"v": {PROTOCOL_VERSION}, "op": "role", {body}}}\n'


def quote(text: str) -> str:
    r"""A JSON string literal: ``quote('a"b\n') == '"a\\"b\\u000a"'``."""
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch < " ":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def json_answer(code: int, body: bytes, unclear: Exception, refused: str) -> dict[str, object]:
    """The JSON object a daemon op answered with code 0; its error (``errors.from_reply``) for another code.

    ``unclear`` is raised for an answer that is not a JSON object, ``refused`` is the message of an
    error that names none. Example: ``json_answer(0, b'{"revoked": 1}', err, "refused")["revoked"] == 1``
    """
    import json

    from ssocred.errors import from_reply

    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise unclear
    if code != 0:
        message, fix = answer.get("message"), answer.get("fix")
        raise from_reply(code, message if isinstance(message, str) else refused, fix if isinstance(fix, str) else None)
    return answer


def parse_reply(data: bytes) -> tuple[int, bytes] | None:
    """``(code, bytes)`` of a complete reply; None for a short, malformed or fall-back one.

    Example: ``parse_reply(b"0 3\\n{}\\n") == (0, b"{}\\n")``
    """
    head, nl, body = data.partition(b"\n")
    fields = head.split(b" ")
    if not nl or len(fields) != 2:
        return None
    try:
        code, length = int(fields[0]), int(fields[1])
    except ValueError:
        return None
    if code < 0 or code > 255 or length != len(body):
        return None
    return code, body


def forwarded_socket() -> str | None:
    """A socket forwarded here from another host's daemon (``ssh -R``) that this user may use, else None.

    ``forwarded_socket_path()``, when ``own_socket`` trusts what is there: a socket of this user with no
    access for others, in a directory strangers cannot swap entries in.
    Example: ``forwarded_socket() == "/tmp/ssocred-me.sock"`` while an ``ssocred forward`` is connected.
    """
    path = os.environ.get("SSOCRED_FORWARD_SOCKET") or forwarded_socket_path(_user_name())
    return path if own_socket(path) else None


def forwarded_socket_path(user: str) -> str:
    """Where ``ssocred forward`` has ``ssh`` put the socket for ``user`` (``%r``, the remote user) by default.

    Example: ``forwarded_socket_path("me") == "/tmp/ssocred-me.sock"``
    """
    return f"/tmp/ssocred-{user}.sock"  # noqa: S108 - own_socket checks its owner


def own_socket(path: str) -> bool:
    """Whether ``path`` is a socket of this user, mode 0600 or stricter, in a directory that is this user's or root's
    and that others cannot write unless it is sticky (``/tmp``): only this user (or root) can have made it.

    Example: ``own_socket("/tmp/ssocred-me.sock")``
    """
    try:
        st = os.lstat(path)
        parent = os.lstat(os.path.dirname(os.path.abspath(path)))
    except OSError:
        return False
    if not (stat.S_ISSOCK(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077):
        return False
    open_to_others = parent.st_mode & 0o022 and not parent.st_mode & stat.S_ISVTX
    return stat.S_ISDIR(parent.st_mode) and parent.st_uid in (0, os.getuid()) and not open_to_others


def _user_name() -> str:
    import pwd  # a builtin module, loaded only on the way to a forwarded socket

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return os.environ.get("USER") or str(os.getuid())


def exchange(request: bytes, path: str | None = None) -> tuple[int, bytes] | None:
    """Send one request line to the daemon: ``(code, bytes)`` of its answer, or None to do without it.

    ``path`` is another socket to ask (a forwarded one); by default the local daemon's, when trusted.
    Example: ``exchange(request_line(["--profile", "dev"]).encode())`` is ``(0, b'{"Version": 1, ...')``.
    """
    if not hasattr(_socket, "AF_UNIX"):
        return None
    path = path or trusted_socket()
    if path is None or path in _silent:
        return None  # a socket there could be anyone's, or a stopped daemon's: do the work without it
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(CONNECT_TIMEOUT)
        sock.connect(path)
        sock.settimeout(SILENCE_TIMEOUT)
        sock.sendall(request)
        data = _receive(sock)
    except TimeoutError:  # a stopped or frozen daemon: later requests of this process would wait as long
        _silent.add(path)
        return None
    except OSError:  # no socket, nobody listening, or a daemon that went away mid-reply
        return None
    finally:
        sock.close()
    return parse_reply(data) if data is not None else None


def _receive(sock: "_socket.socket") -> bytes | None:
    """The reply without its keep-alive bytes; None after ``REPLY_TIMEOUT`` of keep-alives alone."""
    import time  # a builtin module: nothing to load

    give_up = time.monotonic() + REPLY_TIMEOUT
    data = b""
    # Stop at the announced length: the daemon may still have work to do after replying.
    while len(data) <= _MAX_REPLY and not _whole(data):
        chunk = sock.recv(8192)  # raises TimeoutError after SILENCE_TIMEOUT without a byte
        if not chunk:
            break
        data = (data + chunk).lstrip(KEEPALIVE) if not data else data + chunk
        if not data and time.monotonic() > give_up:
            return None
    return data


def _whole(data: bytes) -> bool:
    """Whether ``data`` holds a reply head and at least the bytes it announces."""
    head, nl, body = data.partition(b"\n")
    size = head.rpartition(b" ")[2]
    return bool(nl) and size.isdigit() and len(body) >= int(size)
