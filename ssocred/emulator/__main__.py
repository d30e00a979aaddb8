"""``python -m ssocred.emulator``."""

from __future__ import annotations

import sys

from ssocred.emulator.cli import main

if __name__ == "__main__":
    sys.exit(main())
