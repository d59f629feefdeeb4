"""Operator actions of Quebec: jobs, failed jobs, blocked jobs, queues, keys and clean-up.

A mixin of `Quebec`: each method delegates to `quebec.ops`, which the CLI and the
dashboard share, with this instance's database, settings and keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from quebec import ops
from quebec.config import Settings
from quebec.sealing import Sealing
from quebec.store import Database
from quebec.store.listings import ListFilter


class Operations:
    db: Database
    settings: Settings
    sealing: Sealing

    def get_job(self, job_id: int) -> Any:
        """The job's row with its state, status, error and result (opened if it is encrypted)."""
        return ops.get_job(self.db, job_id, self.sealing.cipher)

    def retry_failed(self, job_id: int) -> bool:
        return ops.retry_failed(self.db, [job_id]) > 0

    def discard_failed(self, job_id: int) -> bool:
        return ops.discard_failed(self.db, [job_id]) > 0

    def cancel(self, job_id: int) -> bool:
        """Cancel a job that has not started; False when it is running, finished or failed."""
        return bool(ops.cancel(self.db, [job_id]))

    def retry_all_failed(
        self,
        class_name: str | None = None,
        queue_name: str | None = None,
        since: float | datetime | None = None,
        until: float | datetime | None = None,
        error_like: str | None = None,
    ) -> int:
        """Retry the failed jobs every given filter matches (ops.failed_filter says how); returns how many."""
        return ops.retry_all_failed(
            self.db, class_name=class_name, queue_name=queue_name, since=since, until=until, error_like=error_like
        )

    def discard_all_failed(
        self,
        class_name: str | None = None,
        queue_name: str | None = None,
        since: float | datetime | None = None,
        until: float | datetime | None = None,
        error_like: str | None = None,
    ) -> int:
        return ops.discard_all_failed(
            self.db, class_name=class_name, queue_name=queue_name, since=since, until=until, error_like=error_like
        )

    # -- several jobs at once (the dashboard's selections and filters) -----------------------
    def retry_failed_jobs(self, job_ids: Sequence[int]) -> int:
        """failed → ready for those of `job_ids` that are failed; returns how many."""
        return ops.retry_failed(self.db, list(job_ids))

    def discard_failed_jobs(self, job_ids: Sequence[int]) -> int:
        return ops.discard_failed(self.db, list(job_ids))

    def retry_failed_matching(self, where: ListFilter) -> int:
        """Retry every failed job the dashboard's filter matches (store.listings); returns how many."""
        return ops.failed_matching(self.db, ops.retry_failed, where)

    def discard_failed_matching(self, where: ListFilter) -> int:
        return ops.failed_matching(self.db, ops.discard_failed, where)

    def unblock_jobs(self, job_ids: Sequence[int]) -> int:
        return len(ops.unblock(self.db, list(job_ids)))

    def cancel_blocked_jobs(self, job_ids: Sequence[int]) -> int:
        return len(ops.cancel_blocked(self.db, list(job_ids)))

    def cancel_scheduled_jobs(self, job_ids: Sequence[int]) -> int:
        return ops.cancel_scheduled(self.db, list(job_ids))

    def cancel_scheduled(self, job_id: int) -> bool:
        return ops.cancel_scheduled(self.db, [job_id]) > 0

    # -- blocked jobs (concurrency limits) ---------------------------------------------------
    def unblock(self, job_id: int) -> bool:
        """Move a blocked job to ready now, without waiting for a slot; False if it is not blocked."""
        return bool(ops.unblock(self.db, [job_id]))

    def unblock_all(self, class_name: str | None = None, queue_name: str | None = None) -> int:
        """Unblock every blocked job (of one class and/or queue when given); returns how many."""
        return ops.unblock_all(self.db, class_name=class_name, queue_name=queue_name)

    def cancel_blocked(self, job_id: int) -> bool:
        """Delete a blocked job (its row goes too, as in the wheel); False if it is not blocked."""
        return bool(ops.cancel_blocked(self.db, [job_id]))

    def pause_queue(self, name: str) -> bool:
        return ops.pause_queue(self.db, name)

    def resume_queue(self, name: str) -> bool:
        return ops.resume_queue(self.db, name)

    def paused_queues(self) -> list[str]:
        return ops.paused_queues(self.db)

    def pause_all(self) -> int:
        """Pause every queue that has a job now (as the wheel); returns how many were newly paused."""
        return ops.pause_all(self.db)

    def resume_all(self) -> int:
        """Resume every paused queue; returns how many pauses were removed."""
        return ops.resume_all(self.db)

    def queue_paused(self, queue_name: str) -> bool:
        return ops.queue_paused(self.db, queue_name)

    def rotate_encryption_keys(self, batch_size: int = 500) -> int:
        """Re-encrypt stored arguments and results with the first key of encryption_key (see
        docs); returns how many rows changed."""
        return ops.rotate_encryption_keys(self.db, self.sealing.cipher, batch_size=batch_size)

    def clear_finished_jobs(self, batch_size: int = 500, finished_before: datetime | None = None) -> int:
        return ops.clear_finished_jobs(self.db, self.settings, batch_size=batch_size, finished_before=finished_before)

    def count_clearable_jobs(self, finished_before: float | datetime | None = None) -> int:
        """How many finished jobs clear_finished_jobs would delete now (seconds since the epoch or a datetime)."""
        return ops.count_clearable_jobs(self.db, self.settings, finished_before=finished_before)
