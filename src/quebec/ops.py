"""Operator actions, one transaction each. The CLI, the dashboard and `qc.*` call these."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from quebec.clock import to_naive_utc
from quebec.config.rules import duration
from quebec.config.settings import BATCH
from quebec.encryption import Cipher, sealed_token
from quebec.errors import ConfigError
from quebec.identifiers import queue_name
from quebec.store import (
    Database,
    batch_completion,
    batch_listings,
    batches,
    blocked,
    cleanup,
    failed,
    jobs,
    listings,
    pauses,
    queries,
    rekey,
    scheduled,
    stats,
)
from quebec.store.batch_listings import BatchDetail, BatchPage
from quebec.store.listings import ListFilter
from quebec.store.queries import JobRow
from quebec.store.stats import ProcessSnapshot, QueueSnapshot
from quebec.types import ENDINGS, JobState, JobStatus

if TYPE_CHECKING:
    from quebec.config import Settings


def get_job(db: Database, job_id: int, cipher: Cipher | None = None) -> JobRow | None:
    """One job; an encrypted result opened with `cipher` (left sealed without one)."""
    row = db.read(queries.get_job, job_id=job_id)
    if row is None or cipher is None or row.result_json is None:
        return row
    token = sealed_token(row.result)
    return row if token is None else replace(row, result_json=cipher.open(token))


def rotate_encryption_keys(db: Database, cipher: Cipher | None, *, batch_size: int = 500) -> int:
    """Re-encrypt every stored encrypted argument list and result with the first key; returns
    how many rows changed. Run it after putting a new key first in encryption_key, then drop
    the old key once it returns."""
    if cipher is None:
        raise ConfigError("rotating keys needs encryption_key set: the new key first, then the old ones")
    size: int = BATCH(batch_size, "rotate_encryption_keys(batch_size=…)")
    total = 0
    for table in rekey.TABLES:
        after = 0
        while True:
            changed, next_after = db.transact(
                rekey.rotate_batch, table=table, after_id=after, limit=size, rotate=cipher.rotate
            )
            total += changed
            if next_after is None:
                break
            after = next_after
    return total


def retry_failed(db: Database, job_ids: Sequence[int]) -> int:
    return db.transact(failed.retry_failed, job_ids=job_ids)


def discard_failed(db: Database, job_ids: Sequence[int]) -> int:
    return db.transact(failed.discard_failed, job_ids=job_ids)


def cancel(db: Database, job_ids: Sequence[int]) -> list[int]:
    """Cancel jobs that have not started (ready, scheduled or blocked); returns those cancelled."""
    return db.transact(jobs.cancel, job_ids=job_ids)


def cancel_scheduled(db: Database, job_ids: Sequence[int]) -> int:
    return db.transact(scheduled.cancel_scheduled, job_ids=job_ids)


def unblock(db: Database, job_ids: Sequence[int]) -> list[int]:
    """blocked → ready, bypassing the concurrency limit; returns the jobs moved."""
    return db.transact(blocked.unblock, job_ids=job_ids)


def unblock_all(db: Database, *, class_name: str | None = None, queue_name: str | None = None, batch: int = 500) -> int:
    """Unblock every blocked job of a class and/or queue (all without filters), in batches."""
    total = 0
    while ids := db.read(blocked.blocked_ids, class_name=class_name, queue_name=queue_name, limit=batch):
        moved = len(unblock(db, ids))
        total += moved
        if not moved:
            return total
    return total


def cancel_blocked(db: Database, job_ids: Sequence[int]) -> list[int]:
    return db.transact(blocked.cancel_blocked, job_ids=job_ids)


def pause_queue(db: Database, name: str) -> bool:
    return db.transact(pauses.pause, queue_name=queue_name(name))


def resume_queue(db: Database, name: str) -> bool:
    return db.transact(pauses.resume, queue_name=queue_name(name))


def paused_queues(db: Database) -> list[str]:
    return db.read(pauses.paused_queues)


def pause_all(db: Database) -> int:
    """Pause every queue that has a job now; returns how many were newly paused."""
    return db.transact(pauses.pause_all)


def resume_all(db: Database) -> int:
    return db.transact(pauses.resume_all)


def queue_paused(db: Database, name: str) -> bool:
    return db.read(pauses.is_paused, queue_name=queue_name(name))


def instant(value: object, what: str) -> datetime | None:
    """A moment given as seconds since the epoch (as the wheel takes it) or a datetime, as naive UTC."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return to_naive_utc(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{what} must be seconds since the epoch or a datetime, got {value!r}")
    try:
        return datetime.fromtimestamp(value, UTC).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"{what}={value!r} is out of range; give seconds since the epoch or a datetime") from None


def _cutoff(db: Database, settings: Settings, finished_before: datetime | None) -> datetime:
    """What a clear deletes finished before: `finished_before`, or clear_finished_jobs_after ago."""
    if finished_before is not None:
        return finished_before
    return db.clock.now() - timedelta(seconds=settings.clear_finished_jobs_after)


def _in_chunks(delete_chunk: Callable[[], int], size: int) -> int:
    """Run `delete_chunk` (one transaction deleting at most `size` rows) until it deletes
    fewer; how many it deleted in all."""
    total = 0
    while True:
        n = delete_chunk()
        total += n
        if n < size:
            return total


def count_clearable_jobs(db: Database, settings: Settings, *, finished_before: object = None) -> int:
    """How many finished jobs clear_finished_jobs would delete now (same default cut-off)."""
    before = instant(finished_before, "finished_before")
    return db.read(cleanup.count_finished, finished_before=_cutoff(db, settings, before))


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
    before = _cutoff(db, settings, None if finished_before is None else to_naive_utc(finished_before))
    return _in_chunks(lambda: db.transact(cleanup.clear_finished, finished_before=before, limit=size), size)


def failed_filter(
    *,
    class_name: str | None = None,
    queue_name: str | None = None,
    since: object = None,
    until: object = None,
    error_like: str | None = None,
) -> dict[str, Any]:
    """queries.list_jobs' filters for failed jobs; each one given must match.

    since/until: when the job failed, seconds since the epoch (as the wheel) or a datetime,
    both inclusive. error_like: an SQL LIKE pattern matched as given against the stored error
    JSON (`%TimeoutError%`), as the wheel does (see queries.list_jobs).
    """
    if error_like is not None and not isinstance(error_like, str):
        raise TypeError(f"error_like must be an SQL LIKE pattern (a str) such as '%Timeout%', got {error_like!r}")
    return {
        "class_name": class_name,
        "queue_name": queue_name,
        "failed_since": instant(since, "since"),
        "failed_until": instant(until, "until"),
        "error_like": error_like,
    }


def failed_jobs(db: Database, *, limit: int = 1000, **where: Any) -> list[JobRow]:
    """Failed jobs, oldest first; `where` as failed_filter() takes it."""
    return db.read(queries.list_jobs, state=JobState.FAILED, limit=limit, **failed_filter(**where))


def retry_all_failed(db: Database, *, batch_size: int = 500, **where: Any) -> int:
    """failed → ready for every failed job that `where` (as failed_filter) takes, all without it, in batches."""
    return _all_failed(db, retry_failed, failed_filter(**where), batch_size=batch_size)


def discard_all_failed(db: Database, *, batch_size: int = 500, **where: Any) -> int:
    return _all_failed(db, discard_failed, failed_filter(**where), batch_size=batch_size)


def _all_failed(
    db: Database, action: Callable[[Database, Sequence[int]], int], where: dict[str, Any], *, batch_size: int
) -> int:
    total = 0
    while True:
        rows = db.read(queries.list_jobs, state=JobState.FAILED, limit=batch_size, **where)
        if not rows:
            return total
        done = action(db, [r.id for r in rows])
        total += done
        if done == 0:
            return total


def failed_matching(
    db: Database, action: Callable[[Database, Sequence[int]], int], where: ListFilter, *, batch_size: int = 500
) -> int:
    """`action` (retry_failed, discard_failed) on every failed job the dashboard's filter
    matches, a page at a time, exactly the rows its failed list shows; returns how many."""
    total = 0
    while True:
        found = db.read(
            listings.list_state, state=JobState.FAILED, where=where, limit=min(batch_size, listings.PAGE_MAX)
        )
        if not found.jobs:
            return total
        done = action(db, [job.id for job in found.jobs])
        total += done
        if done == 0:
            return total


# -- read models for the CLI and the dashboard (store/stats.py) ----------------------------------
def latest_jobs(
    db: Database,
    *,
    status: JobStatus | None = None,
    queue_name: str | None = None,
    class_name: str | None = None,
    since: object = None,
    limit: int = 50,
) -> list[JobRow]:
    """The newest jobs first; since: enqueued at or after it (seconds since the epoch or a datetime)."""
    state, ending = _state_and_ending(status)
    return db.read(
        queries.list_jobs,
        state=state,
        ending=ending,
        queue_name=queue_name,
        class_name=class_name,
        created_since=instant(since, "since"),
        limit=limit,
        newest_first=True,
    )


def _state_and_ending(status: JobStatus | None) -> tuple[JobState | None, JobStatus | None]:
    """A JobStatus as the rows tell it: running is claimed; the endings are finished rows."""
    if status is None:
        return None, None
    if status is JobStatus.RUNNING:
        return JobState.CLAIMED, None
    if status in ENDINGS:
        return None, status
    return JobState(status.value), None


def queue_stats(db: Database, *, with_finished: bool = True) -> QueueSnapshot:
    """Every queue with a job or a pause: counts per state, paused, the oldest ready job."""
    return db.read(stats.queue_stats, with_finished=with_finished)


def process_list(db: Database) -> ProcessSnapshot:
    """Registered processes with their heartbeat and the claims each holds."""
    return db.read(stats.process_list)


# -- batches (docs/batches.md) ---------------------------------------------------------------
_STALLED = duration(positive=True)


def list_batches(db: Database, *, status: str | None = None, before: int | None = None, limit: int = 50) -> BatchPage:
    """Batches newest first (of one status: pending, enqueued, completed or failed)."""
    return db.read(batch_listings.list_batches, status=status, before=before, limit=limit)


def batch_detail(
    db: Database, batch_id: int, *, before: int | None = None, limit: int = 50, jobs_status: str | None = None
) -> BatchDetail | None:
    """One batch with its callbacks and a page of its member jobs (pending, completed or
    failed ones only when `jobs_status` says), or None."""
    return db.read(batch_listings.batch_detail, batch_id=batch_id, before=before, limit=limit, jobs_status=jobs_status)


def sweep_stalled_batches(db: Database, *, stalled_for: float = 300.0, batch_size: int = 500) -> dict[str, int]:
    """Repair stalled batches (store.batch_completion.sweep); returns what it did, by kind."""
    seconds = _STALLED(stalled_for, "sweep_stalled_batches(stalled_for=…)")
    size: int = BATCH(batch_size, "sweep_stalled_batches(batch_size=…)")
    before = db.clock.now() - timedelta(seconds=seconds)
    return db.transact(batch_completion.sweep, stalled_before=before, batch_size=size)


def clear_finished_batches(
    db: Database, settings: Settings, *, batch_size: int | None = None, finished_before: object = None
) -> int:
    """Delete succeeded batches finished before `finished_before` (POSIX seconds or a datetime;
    default clear_finished_jobs_after ago), `batch_size` per transaction; returns how many."""
    given = settings.cleanup_batch_size if batch_size is None else batch_size
    size: int = BATCH(given, "clear_finished_batches(batch_size=…)")
    try:
        before = instant(finished_before, "clear_finished_batches(finished_before=…)")
    except TypeError:
        raise ConfigError(
            f"clear_finished_batches(finished_before=…) must be a POSIX timestamp (seconds) or a datetime, "
            f"got {finished_before!r}; pass e.g. time.time() - 86400"
        ) from None
    cutoff = _cutoff(db, settings, before)
    return _in_chunks(lambda: db.transact(batches.clear_finished, finished_before=cutoff, batch_size=size), size)
