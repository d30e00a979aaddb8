"""The daemon's profile sync job: re-run populate (with ``--prune``) for the sessions that opted in.

It runs every ``--sync-interval`` and soon after a login; one desktop notification (and one log
line) names the accounts or roles that appeared or disappeared. Errors are logged once each and
never stop the daemon. Example: ``ProfileSync(Store()).run()``
"""

from __future__ import annotations

import logging
import threading

from ssocred.adapters import logs, notify
from ssocred.adapters.store import Store
from ssocred.errors import ConfigError, LoginRequired, SsocredError
from ssocred.model.profile_sync import summary

log = logging.getLogger("ssocred.daemon")


class ProfileSync:
    """Keeps the generated profiles of opted-in sessions in step with their accounts: ``ProfileSync(store).run()``."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()  # the scheduler and a login may start it at the same time
        self._said: dict[str, str] = {}  # the last problem logged per session (or "config")

    def run(self) -> None:
        """Sync every opted-in, logged-in session once."""
        if not self._lock.acquire(blocking=False):
            return
        try:
            self._run()
        except Exception as exc:  # the job must keep its schedule
            log.exception("the profile sync failed with %s", type(exc).__name__)
        finally:
            self._lock.release()

    def _run(self) -> None:
        from ssocred.adapters import config_file
        from ssocred.usecases.profile_sync import enabled, sync

        try:
            cfg = config_file.load()
            wanted = enabled(cfg)
            stored = self.store.index().sessions if wanted else {}
        except SsocredError as exc:
            self._once("config", f"profile sync: {exc.line()}")
            return
        self._said.pop("config", None)
        for name, chosen in wanted.items():
            if name not in stored:
                continue  # not logged in: the sync waits for the login
            try:
                synced = sync(self.store, name, chosen, sso_region=cfg.sso_sessions[name].region)
            except (LoginRequired, ConfigError, SsocredError) as exc:
                self._once(name, f"profile sync of session {name}: {logs.REDACTOR.redact(exc.line())}")
                continue
            self._said.pop(name, None)
            if synced.changed:
                r = synced.result
                log.info("profile sync of session %s: %d added, %d updated, %d renamed, %d removed in %s", name,
                         len(r["added"]), len(r["updated"]), len(r["renamed"]), len(r["removed"]), r["config"])
            if synced.appeared or synced.gone:
                text = summary(name, synced.appeared, synced.gone)
                log.info("%s", text)
                notify.desktop("ssocred: your AWS accounts changed", text)

    def _once(self, key: str, line: str) -> None:
        if self._said.get(key) != line:
            log.warning("%s", line)
        self._said[key] = line
