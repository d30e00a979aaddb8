"""``python -m ssocred`` and the ``ssocred`` console script.

``process`` is dispatched before anything else is imported: it runs on every SDK credential
lookup, so it must not pay for argparse or the rest of the CLI.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Entry point: ``ssocred process ...`` takes the fast path, everything else the full CLI."""
    argv = sys.argv[1:]
    if argv and argv[0] == "process":
        from ssocred.process import main as process_main

        raise SystemExit(process_main(argv[1:]))
    from ssocred.cli import main as cli_main

    raise SystemExit(cli_main(argv))


if __name__ == "__main__":
    main()
