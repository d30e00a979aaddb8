"""The client side of ``ssocred process``: ask the daemon over its Unix socket, or step aside.

This runs on every SDK credential lookup, before anything else of ssocred is imported, so it
imports only ``_socket``, ``os``, ``ssocred.rundir`` and the argument grammar
``ssocred.process_args`` (``socket`` pulls in enum and
selectors, ``json`` its decoder): the request line is built and the reply parsed by hand.

Wire protocol, version 2 (one connection per request, the daemon checks the peer's uid first):

* request, one line of JSON: ``{"v": 2, "argv": [...], "config": "<AWS config path>",
  "service": "<keyring service>", "backend": "<$PYTHON_KEYRING_BACKEND>", "cwd": "<working
  directory>"}``; a relative config path is taken from ``cwd``. ``"op": "refresh"`` with
  ``"session"``, ``"seen"`` (the fingerprint of the token the client found stale) and ``"force"``
  asks the daemon to refresh an SSO token instead (``ssocred.tokens``); its answer is
  ``{"fingerprint": ...}`` of the token the daemon now holds, or with an exit code
  ``{"message": ..., "fix": ...}``;
* reply: any number of ``+`` bytes (the daemon is alive and working: one within 0.1 s of the
  request unless the answer itself comes sooner, then one every 0.25 s), then ``<code>
  <length>\n`` and ``length`` bytes. Code 0: the exact stdout of ``ssocred process``; 1 to 255:
  its exit code and the one stderr line; ``FALLBACK`` (-1): the client must run the request
  itself (another keyring service or backend, a ``--login`` that needs the terminal, a refused
  peer, an unknown protocol version), the bytes saying why. A reply shorter than ``length`` (the
  daemon died) is a fall-back too: nothing is written.

A daemon that stays silent for ``SILENCE_TIMEOUT`` (stopped with SIGSTOP, or frozen) costs a
caller about a second before it falls back; a slow answer with keep-alive bytes is waited for.

Example: ``run(["--profile", "dev"])`` prints the credentials and returns 0, or returns None
when no daemon answered (the caller then runs ``ssocred.process``).
"""

import _socket
import os

from ssocred import process_args, rundir

PROTOCOL_VERSION = 2
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


def run(argv: list[str]) -> int | None:
    """Answer ``ssocred process ARGV`` through the daemon: the exit code, or None to fall back.

    Example: ``run(["--sso-session", "corp", "--account-id", "1", "--role-name", "Dev"])``
    """
    if not (hasattr(_socket, "AF_UNIX") and plain_arguments(argv)):
        return None
    try:
        request = request_line(argv).encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes in argv or a path: leave them to the full path
        return None
    try:
        reply = exchange(request)
    except KeyboardInterrupt:
        os.write(2, b"ssocred: interrupted\n")
        return 130
    if reply is None:
        return None
    code, body = reply
    try:
        _write_all(1 if code == 0 else 2, body)
    except OSError:
        return 1  # the reader went away; the output cannot be written twice, so no fallback
    return code


def plain_arguments(argv: list[str]) -> bool:
    """Whether the daemon may answer ``argv``: the one grammar accepts it and it is not ``--help``.

    Anything else goes to the full path, which prints the help or the one-line usage error.
    Example: ``plain_arguments(["--profile", "dev"])`` is True, ``plain_arguments(["-h"])`` False.
    """
    try:
        return not process_args.parse(argv).help
    except Exception:  # a usage error (or anything odd): the full path says what is wrong
        return False


def request_line(argv: list[str]) -> str:
    """The request for ``argv`` as one line of JSON, with the client's config path and service.

    Example: ``request_line(["--profile", "dev"])`` starts ``{"v": 1, "argv": ["--profile", "dev"]``.
    """
    config = os.path.expandvars(os.path.expanduser(os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config"))
    service = rundir.keyring_service()
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


def exchange(request: bytes) -> tuple[int, bytes] | None:
    """Send one request line to the daemon: ``(code, bytes)`` of its answer, or None to do without it.

    Example: ``exchange(request_line(["--profile", "dev"]).encode())`` is ``(0, b'{"Version": 1, ...')``.
    """
    if not hasattr(_socket, "AF_UNIX"):
        return None
    path = rundir.trusted_socket()
    if path is None:
        return None  # a socket there could be anyone's: do the work without the daemon
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(CONNECT_TIMEOUT)
        sock.connect(path)
        sock.settimeout(SILENCE_TIMEOUT)
        sock.sendall(request)
        data = _receive(sock)
    except OSError:  # no socket, nobody listening, a silent daemon, or one that went away mid-reply
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


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
