"""``python -m ssocred`` and the ``ssocred`` console script: the one place that picks a front end.

``process`` is dispatched before anything else is imported: it runs on every SDK credential
lookup, so it asks the daemon first (``ssocred.process.client``, nearly free to import) and only
without an answer starts one (``ssocred.process.started``) or pays for ``ssocred.process.local``;
it never pays for argparse or the rest of the CLI. ``daemon`` and ``emulator`` have front ends of
their own; everything else is the CLI.
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
            from ssocred.process import started

            code = started.run(argv[1:])
        if code is None:
            from ssocred.process.local import main as process_main

            code = process_main(argv[1:])
        exit_now(code)
    if command == "daemon":
        from ssocred.daemon.main import main as daemon_main

        raise SystemExit(daemon_main(argv[1:]))
    if command == "emulator":
        from ssocred.emulator.cli import main as emulator_main

        raise SystemExit(emulator_main(argv[1:]))
    from ssocred.cli.main import main as cli_main

    raise SystemExit(cli_main(argv))


def exit_now(code: int) -> None:
    """Exit with ``code`` once exit handlers ran and output is flushed, without the interpreter's teardown.

    ``process`` runs on every SDK credential lookup and has nothing to tear down: doing it anyway
    costs a daemon-answered call a seventh of the interpreter's start-up, and a keyring read as much
    as the start-up itself. A normal exit is taken when the teardown may matter: a non-daemon thread
    still runs, or boto3 was loaded (a fetch, whose time dwarfs this).
    Example: ``exit_now(0)`` after the credentials are written.
    """
    import atexit
    import os

    threading = sys.modules.get("threading")
    busy = threading is not None and any(
        t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread())
    run_handlers = getattr(atexit, "_run_exitfuncs", None)
    if run_handlers is None or busy or "botocore" in sys.modules:
        raise SystemExit(code)
    run_handlers()  # logging's shutdown, and whatever else was registered: as at a normal exit
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        raise SystemExit(code) from None  # the normal exit reports a closed pipe as it always does
    os._exit(code)


if __name__ == "__main__":
    main()
