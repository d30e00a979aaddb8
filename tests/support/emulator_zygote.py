"""A process that has the emulator imported and forks one emulator process per request.

The suite starts an emulator for hundreds of tests; interpreter start-up and the emulator's imports
cost more CPU than most of those tests spend. A fork of this process is the same
``ssocred emulator`` (``ssocred.emulator.cli.main``) with all of that already done.

Protocol, one JSON line each way on stdin/stdout:
request ``{"argv": [...], "env": {...}, "cwd": "...", "stdout": PATH, "stderr": PATH}``,
answer ``{"pid": N}``. The forked emulator writes its stdout and stderr to those paths.
Children are reaped by the kernel (SIGCHLD ignored): the requester sees one end through a pidfd.
The zygote ends when its stdin closes.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import traceback
from typing import Any, NoReturn


def _child(request: dict[str, Any]) -> NoReturn:
    """In the fork: become ``ssocred emulator ARGV`` with the requester's environment and output files."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        null = os.open(os.devnull, os.O_RDONLY)
        out = os.open(request["stdout"], os.O_WRONLY | os.O_APPEND)
        err = os.open(request["stderr"], os.O_WRONLY | os.O_APPEND)
        for fd, target in ((null, 0), (out, 1), (err, 2)):
            os.dup2(fd, target)
            os.close(fd)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        sys.argv = [sys.argv[0], *request["argv"]]
        from ssocred.emulator.cli import main

        code = main(list(request["argv"]))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # nothing is left to report it to
                stream.flush()
        os._exit(code)


def main() -> None:
    import ssocred.emulator.cli  # noqa: F401 - imported once, before any fork

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request)
        sys.stdout.write(json.dumps({"pid": pid}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
