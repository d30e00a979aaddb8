"""``python -m ssocred`` and the ``ssocred`` console script: the one place that picks a front end.

``process`` is dispatched before anything else is imported: it runs on every SDK credential
lookup, so it asks the daemon first (``ssocred.process.client``, nearly free to import) and only
without an answer pays for ``ssocred.process.local``; it never pays for argparse or the rest of
the CLI. ``daemon`` and ``emulator`` have front ends of their own; everything else is the CLI.
"""

import sys


def main() -> None:
    """Entry point: ``ssocred process ...`` takes the fast path, ``daemon``/``emulator`` their own, the rest the CLI."""
    argv = sys.argv[1:]
    command = argv[0] if argv else ""
    if command == "process":
        from ssocred.process import client

        code = client.run(argv[1:])
        if code is None:
            from ssocred.process.local import exit_now
            from ssocred.process.local import main as process_main

            exit_now(process_main(argv[1:]))
        raise SystemExit(code)
    if command == "daemon":
        from ssocred.daemon.main import main as daemon_main

        raise SystemExit(daemon_main(argv[1:]))
    if command == "emulator":
        from ssocred.emulator.cli import main as emulator_main

        raise SystemExit(emulator_main(argv[1:]))
    from ssocred.cli.main import main as cli_main

    raise SystemExit(cli_main(argv))


if __name__ == "__main__":
    main()
