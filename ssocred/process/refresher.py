"""A refresh that outlives its caller, for processes that have no daemon to ask.

``tokens.refresh`` holds the session lock, finds the token stale and starts this module in a
session of its own, passing the lock's descriptor: a flock belongs to the open file, so the lock
stays held for as long as either process keeps it open. Ctrl-C, a closed terminal, a kill of the
caller's process group, even SIGKILL of the caller: none of them reaches this process while it
spends the refresh token and stores its successor (and SIGINT, SIGTERM and SIGHUP sent to it
directly are held). The caller waits for one line of JSON on stdout:

* ``{"fingerprint": "..."}``: the new token is stored;
* ``{"unsaved": {...}}``: the new token (``model.token_to_dict``), which the keyring refused: the
  caller keeps it in memory for its own answer, over a pipe only the two processes share;
* ``{"code": N, "message": "...", "fix": "..."}``: the refresh failed with that exit code.

Example: ``python -m ssocred.process.refresher --session corp --service ssocred --lock-fd 5``
"""

from __future__ import annotations

import json
import os
import sys


def main(argv: list[str]) -> int:
    """Refresh the session named in ``argv`` under the inherited lock; the answer goes to stdout."""
    from ssocred.adapters.store import Store
    from ssocred.errors import EXIT_SERVICE, SsocredError
    from ssocred.model.sso import fingerprint, token_to_dict
    from ssocred.usecases import tokens

    try:
        session, service, fd = _args(argv)
        _check_held(fd)
        from ssocred.adapters.keyring_io import use_remembered_backend

        use_remembered_backend()
        store = Store(service)
        token = tokens.stored_token(store, session)
        new = tokens.refresh_locked(store, session, token)
        held = tokens.unsaved(store, session)
        answer: dict[str, object] = (
            {"unsaved": token_to_dict(held)} if held is not None else {"fingerprint": fingerprint(new)})
    except SsocredError as exc:
        answer = {"code": exc.exit_code, "message": exc.message, "fix": exc.fix}
    except Exception as exc:  # the caller reports it; its type alone carries no secret
        answer = {"code": EXIT_SERVICE, "message": f"the refresh failed unexpectedly ({type(exc).__name__})",
                  "fix": "try again; ssocred doctor shows the state"}
    try:
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    except OSError:
        pass  # the caller is gone: the token is stored (or held nowhere), nothing more to tell
    return 0


def _args(argv: list[str]) -> tuple[str, str, int]:
    """``(session, keyring service, lock descriptor)`` from ``--session S --service N --lock-fd FD``."""
    from ssocred.errors import UsageError

    values = dict(zip(argv[::2], argv[1::2], strict=False))
    try:
        return values["--session"], values["--service"], int(values["--lock-fd"])
    except (KeyError, ValueError):
        raise UsageError("ssocred.process.refresher needs --session, --service and --lock-fd") from None


def _check_held(fd: int) -> None:
    """Refuse to refresh unless ``fd`` really holds the session lock (taking it again is a no-op then)."""
    from ssocred.errors import ServiceError

    if os.name != "posix":
        raise ServiceError("a detached refresh needs POSIX file locks")
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise ServiceError("the session lock was not handed over to the refresh") from None
    from ssocred.adapters.locks import mark_holder

    mark_holder(fd)  # it may outlive the caller that took the lock


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
