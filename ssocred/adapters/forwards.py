"""The forwards the daemon listens for, kept in ``<state dir>/forwards.json`` (names and allow-lists, no secret).

Each forward's socket is ``<runtime dir>/forward/<name>.sock`` (``socket_path``), in a 0700
directory. Example: ``save([Forward("box", parse_rules(["111122223333"]))]); load()[0].name == "box"``
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ssocred.adapters import paths
from ssocred.errors import ConfigError
from ssocred.model.forward import Forward, forward_from_dict

FILE_NAME = "forwards.json"
SOCKET_DIR = "forward"


def file_path() -> Path:
    """Where the forwards are kept: ``<state dir>/forwards.json``."""
    return paths.state_dir() / FILE_NAME


def load() -> list[Forward]:
    """The saved forwards, in the order they were added; none when the file is missing.

    An entry that is not a forward is left out; a file that is not JSON is a ConfigError naming it.
    Example: ``[f.name for f in load()] == ["build-box"]``
    """
    path = file_path()
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {paths.display_path(path)} ({type(exc).__name__})",
                          fix="remove the file and add the forwards again with `ssocred forward`") from None
    entries = data.get("forwards") if isinstance(data, dict) else None
    found = [forward_from_dict(entry) for entry in entries] if isinstance(entries, list) else []
    return [f for f in found if f is not None]


def save(forwards: list[Forward]) -> None:
    """Replace the saved forwards (atomically, 0600): ``save([Forward("box", rules)])``."""
    path = file_path()
    paths.private_dir(path.parent)
    body = json.dumps({"forwards": [f.to_dict() for f in forwards]}, indent=2) + "\n"
    paths.atomic_write(path, body.encode("utf-8"))


def socket_dir() -> Path:
    """The forwards' sockets' directory, made 0700: ``<runtime dir>/forward``."""
    return paths.private_dir(paths.runtime_dir() / SOCKET_DIR)


def socket_path(name: str) -> str:
    """The local socket of forward ``name``: ``socket_path("box")`` ends ``/forward/box.sock``."""
    return os.path.join(str(socket_dir()), f"{name}.sock")
