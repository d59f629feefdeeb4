"""Quebec's wait methods: block until jobs are done and return their results (docs/jobs.md).
Mixed into `Quebec` to keep app.py small."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from quebec import waiting
from quebec.engine.waiter import Waiter
from quebec.job import ActiveJob

if TYPE_CHECKING:
    from quebec.config import Settings
    from quebec.sealing import Sealing
    from quebec.store import Database

# Threads that wait on one instance for the first time must share one Waiter (one listener
# connection where LISTEN/NOTIFY is used), so its lazy creation is serialised.
_CREATING = threading.Lock()


class WaitMethods:
    db: Database
    settings: Settings
    sealing: Sealing
    _waiter: Waiter | None = None  # made on first use; Quebec.close() closes it

    def wait_for_jobs(self, jobs: Iterable[ActiveJob | int], timeout: float | None = None) -> list[Any]:
        """Block until every job is done; their results, in order.

        Raises the first (in order) job's JobFailed / JobDiscarded / JobCancelled once all are
        done, UnknownJob for an id these tables do not have, and WaitTimeout when `timeout`
        seconds pass first. A retried job is followed to its last attempt.
        """
        ids = [_job_id(job) for job in jobs]
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0):
            raise ValueError(f"wait timeout={timeout!r} must be seconds ≥ 0, or None to wait as long as it takes")
        progress, pending = self._waiting().wait(ids, timeout)
        if pending:
            raise waiting.timed_out(progress, pending, timeout)
        return [waiting.result_of(progress[job_id], self.sealing.cipher) for job_id in ids]

    def wait_for_job(self, job: ActiveJob | int, timeout: float | None = None) -> Any:
        """One job's result (wait_for_jobs of one)."""
        return self.wait_for_jobs([job], timeout)[0]

    def _waiting(self) -> Waiter:
        with _CREATING:
            if self._waiter is None:
                self._waiter = Waiter(self.db, use_listen=self.settings.use_listen_notify)
            return self._waiter


def _job_id(job: ActiveJob | int) -> int:
    if isinstance(job, ActiveJob):
        if job.id is None:
            raise ValueError(
                f"{job.class_name} was not enqueued (its id is None: built, not enqueued, or AbortEnqueue), "
                f"so there is nothing to wait for"
            )
        return job.id
    if isinstance(job, bool) or not isinstance(job, int):
        raise ValueError(f"wait for a job returned by perform_later, or a job id (int), not {job!r}")
    return job
