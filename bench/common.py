"""What the benchmarks share: an isolated environment pointed at the emulator."""

from __future__ import annotations

import os
from pathlib import Path


def isolated_env(tmp: Path, emu_env: dict[str, str], **extra: str) -> dict[str, str]:
    """The current environment without AWS_* settings, with every ssocred and AWS path in ``tmp``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(emu_env)
    env.update({
        "HOME": str(tmp),
        "AWS_CONFIG_FILE": str(tmp / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "SSOCRED_STATE_DIR": str(tmp / "state"),
        "SSOCRED_RUNTIME_DIR": str(tmp / "run"),
        "SSOCRED_LOG_DIR": str(tmp / "log"),
    })
    env.update(extra)
    return env
