"""Quebec's batch methods (docs/batches.md), mixed into `Quebec` to keep app.py small."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from quebec import ops
from quebec.batches import Batch, new_batch
from quebec.store import batches
from quebec.store.held import held_for

if TYPE_CHECKING:
    from quebec.config import Settings
    from quebec.store import Database


class BatchMethods:
    db: Database
    settings: Settings

    def batch(
        self,
        *,
        description: str | None = None,
        on_finish: Any = None,
        on_success: Any = None,
        on_failure: Any = None,
        metadata: dict[str, Any] | None = None,
        **extra_metadata: Any,
    ) -> Batch:
        """Create a batch. Use as a context manager::

            with qc.batch(description="import", on_finish=ReportJob) as batch:
                for row in rows:
                    ImportRowJob.perform_later(qc, row)

        Callbacks are a job class or `Job.build(...)` (so `ReportJob.set(queue="reports").build(arg)`
        works); they are enqueued when the batch finishes. on_success fires only if no job
        failed, on_failure if any did, on_finish either way. Extra keywords are merged into
        metadata (JSON values).
        """
        creation = new_batch(
            now=self.db.clock.now(),
            forced_queue=self.settings.force_override_queue,
            description=description,
            on_finish=on_finish,
            on_success=on_success,
            on_failure=on_failure,
            metadata=metadata,
            extra_metadata=extra_metadata,
        )
        return Batch(self, creation=creation)

    def find_batch(self, batch_id: int) -> Batch | None:
        """Load a batch by id, or None."""
        if isinstance(batch_id, bool) or not isinstance(batch_id, int):
            raise TypeError(f"find_batch takes a batch id (an int), got {batch_id!r}")
        return _loaded(self, _read(self.db, batch_id=batch_id))

    def find_batch_by_active_job_batch_id(self, active_job_batch_id: str) -> Batch | None:
        """Load a batch by its provider-agnostic UUID, or None."""
        if not isinstance(active_job_batch_id, str):
            raise TypeError(
                f"find_batch_by_active_job_batch_id takes the batch's UUID as a string, got {active_job_batch_id!r}"
            )
        return _loaded(self, _read(self.db, active_job_batch_id=active_job_batch_id))

    def clear_finished_batches(
        self, batch_size: int | None = None, finished_before: float | datetime | None = None
    ) -> int:
        """Delete succeeded batches whose finished_at is older than `finished_before` (a POSIX
        timestamp or a datetime; default: now minus clear_finished_jobs_after), `batch_size` rows
        per transaction (default: cleanup_batch_size). Failed batches are kept, like failed
        jobs. Returns how many were deleted."""
        return ops.clear_finished_batches(
            self.db, self.settings, batch_size=batch_size, finished_before=finished_before
        )

    def sweep_stalled_batches(self, stalled_for: float = 300.0, batch_size: int = 500) -> dict[str, int]:
        """Repair stalled batches (Solid Queue's Batch.sweep_stalled): drop tracking rows of jobs
        that already finished or failed, finish started batches with nothing outstanding, and
        start batches created more than `stalled_for` seconds ago that were never started.

        Returns {"stale_executions": n, "finished_batches": n, "started_batches": n}.
        """
        return ops.sweep_stalled_batches(self.db, stalled_for=stalled_for, batch_size=batch_size)


def _read(db: Database, **where: Any) -> batches.BatchRow | None:
    """batches.find in the transaction a batch block of this context holds on `db` (it sees
    the block's own batches), else in a read transaction of its own."""
    open_ = held_for(db)
    return open_.run(batches.find, **where) if open_ is not None else db.read(batches.find, **where)


def _loaded(qc: Any, row: batches.BatchRow | None) -> Batch | None:
    return None if row is None else Batch(qc, row, row.pending_jobs, row.live_failed_jobs)
