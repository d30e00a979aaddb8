"""Where a service manager's files for the daemon live, and whether they are installed; cheap to import.

``ssocred process`` asks ``installed()`` before it would start a daemon itself, so this loads next to nothing
(``ssocred.adapters.service_manager`` writes the files).
Example: ``installed()`` is True once ``~/.config/systemd/user/ssocred.service`` exists (Linux).
"""

import os
import sys

LABEL = "com.ssocred.daemon"


def unit_dir_text() -> str:
    """Where systemd looks for user units: ``$XDG_CONFIG_HOME/systemd/user``, e.g. ``/home/me/.config/systemd/user``."""
    base = os.environ.get("XDG_CONFIG_HOME", "")
    return os.path.join(base if os.path.isabs(base) else os.path.expanduser("~/.config"), "systemd", "user")


def plist_text() -> str:
    """The launchd agent file: ``/Users/me/Library/LaunchAgents/com.ssocred.daemon.plist``."""
    return os.path.join(os.path.expanduser("~/Library/LaunchAgents"), f"{LABEL}.plist")


def installed() -> bool:
    """Whether a service manager starts the daemon here (its unit or agent file exists): ``installed()``."""
    if sys.platform.startswith("darwin"):
        return os.path.exists(plist_text())
    if sys.platform.startswith("linux"):
        return os.path.exists(os.path.join(unit_dir_text(), "ssocred.service"))
    return False
