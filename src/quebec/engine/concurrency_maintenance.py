"""Concurrency maintenance (the dispatcher's): expired semaphores deleted, blocked jobs unblocked.

A slot is given back in the transaction that records its job's outcome; this is the
safety net for slots nobody gives back (a holder that vanished with its row, a wheel
process that crashed): once a semaphore's `concurrency_duration` has passed without a
take or give-back, it is deleted and the blocked jobs of its key get its slots.
Every dispatcher may run it at once: both steps are guarded transitions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from quebec.engine.runnable import Runnable
from quebec.store import Database, blocked, semaphores

log = logging.getLogger("quebec.dispatcher")
BATCH = 500


class ConcurrencyMaintenance(Runnable):
    name = "concurrency-maintenance"

    def __init__(self, db: Database, *, interval: float, on_unblocked: Callable[[], None]) -> None:
        super().__init__()
        self._db = db
        self.interval = interval
        self._on_unblocked = on_unblocked

    def run_once(self) -> float:
        expired = self._db.transact(semaphores.expire, limit=BATCH)
        moved = self._db.transact(blocked.unblock_expired, limit=BATCH)
        if expired or moved:
            log.info("concurrency.maintenance expired_semaphores=%d unblocked=%d", len(expired), len(moved))
        if moved:
            self._on_unblocked()
        return 0.0 if len(expired) == BATCH or len(moved) >= BATCH else self.interval
