"""Batch maintenance (the dispatcher's): qc.sweep_stalled_batches() on a timer.

A batch job's end is written in the transaction of its outcome; this is the safety net for
ends nobody wrote (a job failed by pruning, retried or discarded by an operator, written by
a process that does not know batches) and for batches whose `with` block never ended:
tracking rows of ended jobs dropped, started batches with nothing outstanding finished,
batches pending for longer than `stalled_for` started. Every dispatcher may run it at once:
finishing is guarded by the batch row.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from quebec.engine.runnable import Runnable
from quebec.errors import MissingTables
from quebec.store import Database, batch_completion

log = logging.getLogger("quebec.dispatcher")
BATCH = 500
STALLED_FOR = 300.0  # seconds a batch may stay pending (its block open) before the sweep starts it


class BatchMaintenance(Runnable):
    name = "batch-maintenance"

    def __init__(self, db: Database, *, interval: float) -> None:
        super().__init__()
        self._db = db
        self.interval = interval
        self._missing_said = False

    def run_once(self) -> float:
        before = self._db.clock.now() - timedelta(seconds=STALLED_FOR)
        try:
            done = self._db.transact(batch_completion.sweep, stalled_before=before, batch_size=BATCH)
        except MissingTables:  # tables made by a Quebec older than batches: nothing to sweep
            if not self._missing_said:
                log.info("batch.sweep_skipped: the batch tables do not exist; qc.create_tables() adds them")
                self._missing_said = True
            return self.interval
        if any(done.values()):
            log.info(
                "batch.sweep stale_executions=%d finished_batches=%d started_batches=%d",
                done["stale_executions"],
                done["finished_batches"],
                done["started_batches"],
            )
        return 0.0 if BATCH in (done["stale_executions"], done["started_batches"]) else self.interval
