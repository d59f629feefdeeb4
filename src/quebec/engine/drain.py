"""Drain: claim and perform jobs in the calling thread, as a worker would, for tests.

`qc.drain_one()` and `qc.drain_batch(n)` come here. Claims are made exactly as a worker
makes them (one `ready.claim` transaction) under a Worker process row of the drain's own,
registered on first use, heartbeated on every call and deregistered by close(); so a
test that drains and never performs leaves claims that pruning recovers, like a crashed
worker's. Performing goes through the worker's executor, and the outcome is written
with the completer's `write_outcomes` before perform() returns: the tables then read as
a worker would have left them.

Due scheduled jobs are dispatched first (what a running dispatcher would have done by
now), so a retry or `wait_until` that is due can be drained too.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable

from quebec.config import Settings
from quebec.engine.batch_members import BatchMemberExecutor
from quebec.engine.completer import write_outcomes
from quebec.engine.executor import Executor
from quebec.engine.outcomes import Outcome
from quebec.engine.process_rows import process_info
from quebec.store import Database, processes, ready, scheduled
from quebec.types import ClaimedJob, QueueSelector

log = logging.getLogger("quebec.worker")
HoldBack = Callable[[ClaimedJob], Outcome | None]


class Drain:
    def __init__(self, db: Database, settings: Settings, executor: Executor, hold_back: HoldBack | None = None) -> None:
        self._db = db
        self._settings = settings
        self._executor = BatchMemberExecutor(executor)  # batch jobs' outcomes name their batch
        # A rate limit may hold a job back, as it does on a worker thread (engine/rate_limiter.py).
        self._hold_back = hold_back
        self._lock = threading.Lock()
        self._process_id: int | None = None
        self._beat_due = 0.0  # monotonic time of the next heartbeat (one per heartbeat interval)

    def claim(self, limit: int) -> list[ClaimedJob]:
        """Up to `limit` ready jobs, claimed by this drain's process row (due scheduled jobs first)."""
        process_id = self._registered()
        s = self._settings
        self._db.transact(scheduled.dispatch_due, limit=max(limit, s.dispatcher_batch_size))
        forced = s.force_override_queue
        queues = QueueSelector((forced,)) if forced else QueueSelector(s.worker_queues)
        return self._db.transact(
            ready.claim,
            queues=queues,
            limit=limit,
            process_id=process_id,
            limited_queues=tuple(s.experimental_queue_concurrency),
        )

    def perform(self, job: ClaimedJob) -> Outcome:
        """Run `job` through the executor and write its outcome; returns the outcome written."""
        held = self._hold_back(job) if self._hold_back is not None else None
        outcome = held if held is not None else self._executor.perform(job)
        process_id = self._registered()
        write_outcomes(
            self._db,
            process_id=process_id,
            outcomes=[outcome],
            preserve_finished=self._settings.preserve_finished_jobs,
        )
        return outcome

    @property
    def stopping(self) -> threading.Event:
        """The executor's shutdown flag: set, Continuable jobs stop at their next checkpoint."""
        return self._executor.stopping

    def heartbeat(self) -> None:
        """Keep the row alive while jobs run long (a no-op when no row is registered or none is due)."""
        if self._process_id is not None:
            self._registered()

    def close(self) -> None:
        """Deregister the process row; claims still held go back to ready when it is pruned."""
        with self._lock:
            process_id, self._process_id = self._process_id, None
        if process_id is not None:
            self._db.transact(processes.deregister, process_id=process_id)

    def _registered(self) -> int:
        """This drain's process row id: registered on first use, heartbeated once per
        process_heartbeat_interval after (not once per job), and registered again if pruning
        removed it meanwhile."""
        with self._lock:
            now = time.monotonic()
            if self._process_id is not None:
                if now < self._beat_due:
                    return self._process_id
                missing = self._db.transact(processes.heartbeat_many, process_ids=[self._process_id])
                if not missing:
                    self._beat_due = now + self._settings.process_heartbeat_interval
                    return self._process_id
                log.warning("drain.pruned process_id=%s: registering again", self._process_id)
            extra = {"queues": list(self._settings.worker_queues), "threads": 1, "drain": True}
            info, _ = process_info("Worker", "drain", socket.gethostname(), extra)
            self._process_id = self._db.transact(processes.register, info=info)
            self._beat_due = now + self._settings.process_heartbeat_interval
            return self._process_id
