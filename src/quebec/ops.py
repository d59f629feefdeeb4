"""Operator actions, one transaction each. The CLI, the dashboard and `qc.*` call these."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from quebec.clock import to_naive_utc
from quebec.config.settings import BATCH
from quebec.errors import ConfigError
from quebec.identifiers import queue_name
from quebec.store import Database, cleanup, failed, jobs, pauses, queries, scheduled
from quebec.store.queries import JobRow
from quebec.types import JobState

if TYPE_CHECKING:
    from quebec.config import Settings


def get_job(db: Database, job_id: int) -> JobRow | None:
    return db.read(queries.get_job, job_id=job_id)


def retry_failed(db: Database, job_ids: Sequence[int]) -> int:
    return db.transact(failed.retry_failed, job_ids=job_ids)


def discard_failed(db: Database, job_ids: Sequence[int]) -> int:
    return db.transact(failed.discard_failed, job_ids=job_ids)


def cancel(db: Database, job_ids: Sequence[int]) -> list[int]:
    """Cancel jobs that have not started (ready, scheduled or blocked); returns those cancelled."""
    return db.transact(jobs.cancel, job_ids=job_ids)


def cancel_scheduled(db: Database, job_ids: Sequence[int]) -> int:
    return db.transact(scheduled.cancel_scheduled, job_ids=job_ids)


def pause_queue(db: Database, name: str) -> bool:
    return db.transact(pauses.pause, queue_name=queue_name(name))


def resume_queue(db: Database, name: str) -> bool:
    return db.transact(pauses.resume, queue_name=queue_name(name))


def paused_queues(db: Database) -> list[str]:
    return db.read(pauses.paused_queues)


def clear_finished_jobs(
    db: Database, settings: Settings, *, batch_size: int = 500, finished_before: datetime | None = None
) -> int:
    """Delete finished jobs older than `finished_before` (default: clear_finished_jobs_after ago)."""
    # 0 deleted nothing and looped forever (n < batch_size never held); the settings' bound
    # also keeps one DELETE within SQLite's bound-value limit.
    size: int = BATCH(batch_size, "clear_finished_jobs(batch_size=…)")
    if finished_before is not None and not isinstance(finished_before, datetime):
        raise ConfigError(
            f"clear_finished_jobs(finished_before=…) must be a datetime (or None for "
            f"clear_finished_jobs_after ago), got {finished_before!r}"
        )
    before = (
        to_naive_utc(finished_before)
        if finished_before is not None
        else db.clock.now() - timedelta(seconds=settings.clear_finished_jobs_after)
    )
    total = 0
    while True:
        n = db.transact(cleanup.clear_finished, finished_before=before, limit=size)
        total += n
        if n < size:
            return total


def failed_jobs(
    db: Database, *, class_name: str | None = None, queue_name: str | None = None, limit: int = 1000
) -> list[JobRow]:
    return db.read(queries.list_jobs, state=JobState.FAILED, class_name=class_name, queue_name=queue_name, limit=limit)


def retry_all_failed(
    db: Database, *, class_name: str | None = None, queue_name: str | None = None, batch_size: int = 500
) -> int:
    """failed → ready for every failed job (optionally of one class or queue), in batches."""
    return _all_failed(db, retry_failed, class_name=class_name, queue_name=queue_name, batch_size=batch_size)


def discard_all_failed(
    db: Database, *, class_name: str | None = None, queue_name: str | None = None, batch_size: int = 500
) -> int:
    return _all_failed(db, discard_failed, class_name=class_name, queue_name=queue_name, batch_size=batch_size)


def _all_failed(
    db: Database,
    action: Callable[[Database, Sequence[int]], int],
    *,
    class_name: str | None,
    queue_name: str | None,
    batch_size: int,
) -> int:
    total = 0
    while True:
        rows = failed_jobs(db, class_name=class_name, queue_name=queue_name, limit=batch_size)
        if not rows:
            return total
        done = action(db, [r.id for r in rows])
        total += done
        if done == 0:
            return total
