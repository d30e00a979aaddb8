"""``python -m ssocred`` and the ``ssocred`` console script.

``process`` is dispatched before anything else is imported: it runs on every SDK credential
lookup, so it asks the daemon first (``ssocred.fastpath``, nearly free to import) and only
without an answer pays for ``ssocred.process``; it never pays for argparse or the rest of the CLI.
"""

import sys


def main() -> None:
    """Entry point: ``ssocred process ...`` takes the fast path, everything else the full CLI."""
    argv = sys.argv[1:]
    if argv and argv[0] == "process":
        from ssocred import fastpath

        code = fastpath.run(argv[1:])
        if code is None:
            from ssocred.process import main as process_main

            code = process_main(argv[1:])
        raise SystemExit(code)
    from ssocred.cli import main as cli_main

    raise SystemExit(cli_main(argv))


if __name__ == "__main__":
    main()
