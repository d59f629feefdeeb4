"""Quebec's enqueue methods (docs/jobs.md), mixed into `Quebec` to keep app.py small."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from quebec import enqueue_callbacks, enqueuing
from quebec.batches import batch_route
from quebec.errors import EnqueueError
from quebec.events import JobEvent, JobEventKind
from quebec.job import ActiveJob, BaseClass, JobDescriptor, active_jobs
from quebec.store import jobs

if TYPE_CHECKING:
    from quebec.config import Settings
    from quebec.engine.runtime import ProcessRuntime
    from quebec.sealing import Sealing
    from quebec.store import Database


class EnqueueMethods:
    db: Database
    settings: Settings
    sealing: Sealing
    _runtime: ProcessRuntime | None  # set by Quebec: an enqueue wakes this process's workers

    def enqueue_jobs(self, batch: Sequence[ActiveJob], *, callbacks: bool = False) -> list[ActiveJob]:
        """Insert jobs in one transaction; returns them with ids, in input order.

        callbacks=True (perform_later's one job): its class's enqueue callbacks run around the insert.
        """
        if not batch:
            return []
        rows, plans = enqueuing.plan(
            batch, self.db.clock.now(), self.settings.force_override_queue, self.sealing.sealer
        )

        route = batch_route(self.db, batch)  # None outside `with qc.batch()` / `batch.enqueue()`

        def insert() -> list[ActiveJob]:
            enqueued = self.db.transact(jobs.enqueue_many, rows) if route is None else route(rows)
            enqueuing.settle(batch, plans, enqueued, rows.arguments)
            for job in batch:
                job.quebec = self  # job.wait() asks this instance
            if self.db.events:
                self.db.events.emit(
                    JobEvent(JobEventKind.ENQUEUED, job.id, job.class_name, job.queue_name)
                    for job in batch
                    if job.id is not None
                )
            if self._runtime is not None:
                self._runtime.wake_workers(set(rows.queue_names))
            return list(batch)

        if callbacks:
            return [enqueue_callbacks.run(batch[0], rows, insert)]
        return insert()

    def perform_all_later(self, batch: Iterable[JobDescriptor]) -> list[ActiveJob]:
        """Bulk enqueue: `qc.perform_all_later([Job.build(1), Job.build(2), ...])`. No enqueue callbacks run."""
        return self.enqueue_jobs(active_jobs(batch))

    def perform_later(self, klass: type[BaseClass], *args: Any, **kwargs: Any) -> ActiveJob:
        """`klass.perform_later(*args, **kwargs)` on this instance, whichever Quebec the class is registered with."""
        if not (isinstance(klass, type) and issubclass(klass, BaseClass)):
            raise EnqueueError(f"qc.perform_later takes a job class (a quebec.BaseClass subclass) first, got {klass!r}")
        return klass.perform_later(self, *args, **kwargs)
