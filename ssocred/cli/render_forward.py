"""Text layouts of ``ssocred forward`` and the forwarding lines of ``ssocred status`` (``cli.render`` uses them).

Example: ``text_forward_remove({"name": "box", "removed": True}) == "Removed forward 'box'."``
"""

from __future__ import annotations

from typing import Any


def forward_lines(d: dict[str, Any]) -> list[str]:
    """``status``'s lines about forwarding: this host's saved forwards, and a daemon forwarded to this host."""
    lines = [f"forward {f['name']}: allows {', '.join(f['allow'])}" for f in d.get("forwards", [])]
    if d.get("forwarded_socket"):
        lines.append(f"credentials come from a daemon forwarded to this host ({d['forwarded_socket']}); "
                     "its sessions are not listed here")
    return lines


def text_forward(d: dict[str, Any]) -> str:
    """``ssocred forward --print``: the ssh command, then the ~/.ssh/config block that does the same."""
    from ssocred.model.forward import shell_line

    lines = [f"forward '{d['name']}' allows {', '.join(d['allow'])}; local socket {d['local_socket']}"]
    if not d["daemon_listening"]:
        lines.append("note: no daemon listens for it yet; it does once the daemon runs (ssocred service install)")
    lines += ["", "connect with:", "  " + shell_line(d["ssh_command"]), "", "or add to ~/.ssh/config:", "",
              d["ssh_config"].rstrip()]
    return "\n".join(lines)


def text_forward_list(d: dict[str, Any]) -> str:
    """``ssocred forward --list``: one forward a line, ``box: allows 111122223333:Dev; local socket ...``."""
    if not d["forwards"]:
        return "No forwards saved (ssocred forward HOST --allow ACCOUNT[:ROLE] adds one)."
    return "\n".join(f"{f['name']}: allows {', '.join(f['allow'])}; local socket {f['local_socket']}"
                     for f in d["forwards"])


def text_forward_remove(d: dict[str, Any]) -> str:
    """``ssocred forward --remove box``: ``Removed forward 'box'.``"""
    return f"Removed forward '{d['name']}'." if d["removed"] else f"No forward '{d['name']}'; nothing removed."
