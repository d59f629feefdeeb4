"""Dispatcher: move due scheduled jobs to ready, in batches."""

from __future__ import annotations

import logging
from collections.abc import Callable

from quebec.engine.runnable import Runnable
from quebec.store import Database, scheduled

log = logging.getLogger("quebec.dispatcher")


class Dispatcher(Runnable):
    name = "dispatcher"

    def __init__(
        self, db: Database, *, polling_interval: float, batch_size: int, on_dispatched: Callable[[], None]
    ) -> None:
        super().__init__()
        self._db = db
        self.polling_interval = polling_interval
        self.batch_size = batch_size
        self._on_dispatched = on_dispatched

    def run_once(self) -> float:
        moved = self._db.transact(scheduled.dispatch_due, limit=self.batch_size)
        if moved:
            log.debug("job.dispatched count=%d", moved)
            self._on_dispatched()
        return 0.0 if moved == self.batch_size else self.polling_interval
