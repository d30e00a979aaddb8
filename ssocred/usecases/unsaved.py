"""What a front end says at its end about refreshed tokens that only this process holds.

Only a refresh can leave a token unsaved, so this never imports the token module: a run that did not
load it has nothing to say. Example: ``sys.stderr.write("".join(warning_lines()))`` before exiting.
"""

from __future__ import annotations

import sys


def warning_lines() -> list[str]:
    """``["ssocred: warning: the refreshed token of SSO session 'corp' could not be stored ...\\n"]``, or none."""
    tokens = sys.modules.get("ssocred.usecases.tokens")
    return [f"ssocred: warning: {line}\n" for line in tokens.unsaved_warnings()] if tokens is not None else []
