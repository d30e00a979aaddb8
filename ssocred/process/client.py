"""The client side of ``ssocred process``: ask the daemon over its Unix socket, or step aside.

This runs on every SDK credential lookup, before anything else of ssocred is imported, so it
imports only ``_socket``, ``os``, ``ssocred.socket_protocol`` and the argument grammar
``ssocred.process_args`` (``socket`` pulls in enum and selectors, ``json`` its decoder): the
request line is built and the reply parsed by hand.

The wire protocol is in ``ssocred.socket_protocol``.

With no local daemon, a role named by its arguments is asked of a daemon forwarded to this host
(``ssocred forward``), if there is one. Example: ``run(["--profile", "dev"])`` prints the
credentials and returns 0, or returns None when no daemon answered (the caller then runs
``ssocred.process.local``).
"""

import _socket
import os

from ssocred import process_args
from ssocred.socket_protocol import exchange, forwarded_socket, request_line, role_request


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
        if reply is None:
            reply = _forwarded(argv)
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


def _forwarded(argv: list[str]) -> tuple[int, bytes] | None:
    """The answer of a daemon forwarded to this host (``ssh -R``) for a role named by its arguments, else None.

    A ``--profile`` needs this host's config read: the full path resolves it, then asks the same socket.
    """
    named = process_args.parse(argv).named()
    path = forwarded_socket() if named is not None else None
    if named is None or path is None:
        return None
    try:
        return exchange(role_request(*named).encode("utf-8"), path)
    except UnicodeEncodeError:  # undecodable bytes in an argument: the full path says what is wrong
        return None


def plain_arguments(argv: list[str]) -> bool:
    """Whether the daemon may answer ``argv``: the one grammar accepts it and it is not ``--help``.

    Anything else goes to the full path, which prints the help or the one-line usage error.
    Example: ``plain_arguments(["--profile", "dev"])`` is True, ``plain_arguments(["-h"])`` False.
    """
    try:
        return not process_args.parse(argv).help
    except Exception:  # a usage error (or anything odd): the full path says what is wrong
        return False


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
