"""``ssocred login --remote``: the PKCE login for a machine without a browser, through an SSH port forward.

The browser runs on the user's laptop; its redirect to ``http://127.0.0.1:PORT/oauth/callback`` is
carried back to this machine by ``ssh -L PORT:127.0.0.1:PORT``, so the port must be fixed and known
before the login starts: ``--port N``, else ``$SSOCRED_LOGIN_PORT``, else :data:`DEFAULT_PORT`.
Example: ``login_port(None, {"SSOCRED_LOGIN_PORT": "9123"}) == 9123``
"""

from __future__ import annotations

import errno
import re
from collections.abc import Mapping

from ssocred.errors import ServiceError, UsageError

#: The loopback port the remote login listens on unless told otherwise. Chosen because it is:
#: above 1024 (no privilege needed); below Linux's ephemeral range (32768-60999) and IANA's
#: dynamic range (49152-65535), so no outgoing connection on either machine can happen to hold it;
#: away from the ports development servers and tools default to (3000, 5000, 8000-8999, 9000...);
#: and in neither IANA's service list (/etc/services) nor nmap's table of ports seen open.
DEFAULT_PORT = 28461
PORT_ENV = "SSOCRED_LOGIN_PORT"
#: A user or host name that can be shown in a shell command without quoting.
_PLAIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def port_number(text: str) -> int:
    """``port_number("8400") == 8400``; ValueError unless a whole number from 1 to 65535."""
    value = int(text.strip(), 10)
    if not 1 <= value <= 65535:
        raise ValueError(f"{value} is not a port from 1 to 65535")
    return value


def login_port(flag: int | None, env: Mapping[str, str]) -> int:
    """The port to listen on: ``--port`` wins over ``$SSOCRED_LOGIN_PORT``, which wins over the default."""
    if flag is not None:
        return flag
    text = env.get(PORT_ENV, "").strip()
    if not text:
        return DEFAULT_PORT
    try:
        return port_number(text)
    except ValueError:
        raise UsageError(f"{PORT_ENV}={text!r} is not a port from 1 to 65535",
                         fix=f"set it to a port number, or unset it to use {DEFAULT_PORT}") from None


def unavailable(port: int, exc: OSError) -> ServiceError:
    """The one line for a port that cannot be listened on (in use, or privileged)."""
    if exc.errno == errno.EADDRINUSE:
        why = "is already in use (another ssocred login --remote, or another program)"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        why = "needs privileges to listen on"
    else:
        why = f"cannot be listened on ({exc.strerror or type(exc).__name__})"
    return ServiceError(f"port {port} on 127.0.0.1 {why}",
                        fix=f"choose another with --port N (or {PORT_ENV}=N) and use the same N in ssh -L")


def ssh_destination(env: Mapping[str, str], hostname: str | None = None) -> tuple[str, str]:
    """What to put after ``ssh -L ...`` to reach this machine, and what that guess is based on.

    From ``$SSH_CONNECTION`` (``client_ip client_port server_ip server_port``): the address this
    session came in on, with ``-p`` for a port other than 22 and the login user. Otherwise this
    machine's hostname, or ``<host>`` when there is none worth showing.
    Example: ``ssh_destination({"SSH_CONNECTION": "10.0.0.1 5000 10.0.0.2 22", "USER": "al"})[0] == "al@10.0.0.2"``
    """
    import socket

    fields = env.get("SSH_CONNECTION", "").split()
    if len(fields) == 4 and _address(fields[2]) and fields[3].isdigit():
        user = env.get("USER") or env.get("LOGNAME") or ""
        target = f"{user}@{fields[2]}" if _PLAIN.match(user) else fields[2]
        port = "" if fields[3] == "22" else f"-p {fields[3]} "
        return port + target, f"{fields[2]} is the address this SSH session came in on"
    name = socket.gethostname() if hostname is None else hostname
    if _PLAIN.match(name) and name.split(".")[0] != "localhost":
        return name, f"{name} is this machine's hostname"
    return "<host>", ""


def _address(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def instructions(port: int, url: str, device_code_command: str, timeout: float, env: Mapping[str, str]) -> str:
    """What the user does on the laptop: the ``ssh -L`` line, the URL to open, and the fallback."""
    destination, source = ssh_destination(env)
    note = (f"    ({source}; use the name you ssh to if it differs)" if source
            else "    (replace <host> with the name you ssh to this machine with)")
    return "\n".join([
        f"Remote login: the browser's answer comes back to 127.0.0.1:{port} on this machine.",
        "1. On your laptop, forward that port (the same number on both sides) and keep the connection open:",
        "",
        f"    ssh -L {port}:127.0.0.1:{port} {destination}",
        note,
        "",
        "2. Open this URL in the laptop's browser and approve the login:",
        "",
        f"    {url}",
        "",
        f"Waiting up to {timeout:.0f} s for the browser (Ctrl-C to cancel). No port forwarding possible? "
        f"Use the device code flow: {device_code_command}",
    ])
