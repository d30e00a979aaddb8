"""``~/.aws/credentials`` on disk: the sections ssocred exports, edited under a lock, 0600, atomically.

Only sections that carry ssocred's marker are ever written or removed; comments, order and
every other section stay byte for byte (``ssocred.model.credentials_file`` does the text edits).
Example: ``write([(Export("dev", "corp", "111122223333", "Admin"), creds)])``
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ssocred.adapters import config_file, paths
from ssocred.adapters.paths import display_path
from ssocred.errors import ConfigError
from ssocred.model import credentials_file as model
from ssocred.model.credentials_file import Export
from ssocred.model.sso import RoleCredentials

#: Whatever mode the file had: it holds secret keys once ssocred writes to it.
MODE = 0o600


def path() -> Path:
    """The file edits go to, symlinks followed: ``$AWS_SHARED_CREDENTIALS_FILE`` or ``~/.aws/credentials``."""
    return Path(os.path.realpath(paths.aws_credentials_file()))


def exports(file: Path | None = None) -> list[Export]:
    """The sections ssocred exported (none when there is no file): ``[e.name for e in exports()]``."""
    target = file or path()
    shown = display_path(target)
    try:
        text = target.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return []
    except UnicodeDecodeError:
        raise ConfigError(f"{shown} is not valid UTF-8", fix="save the file as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {shown}: {exc.strerror}", fix=f"check the permissions of {shown}") from None
    return model.exports(text)


def write(items: Sequence[tuple[Export, RoleCredentials]]) -> bool:
    """Write (or replace) each export's section in one edit; True when the file changed."""
    def change(text: str, shown: str) -> tuple[str, None]:
        for export, creds in items:
            text = model.put(text, export, creds, shown)
        return text, None

    old, new, _ = config_file.edit(change, path=path(), mode=MODE)
    return old != new


def remove(names: set[str]) -> list[str]:
    """Remove the exported sections among ``names``; the names that were there, in file order."""
    if not names or not path().exists():
        return []

    def change(text: str, shown: str) -> tuple[str, list[str]]:
        there = [e.name for e in model.exports(text) if e.name in names]
        return model.drop(text, set(there)), there

    _, _, removed = config_file.edit(change, path=path(), mode=MODE)
    return removed
