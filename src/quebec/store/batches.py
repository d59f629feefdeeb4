"""Batches (Solid Queue's): create, join jobs, start, read, clear; the rows the wheel writes.

A batch row's counters are written when it finishes; until then they are derived from
the tables, as the wheel derives them: a job of the batch is outstanding while its
batch_executions row exists, failed while its failed_executions row does, completed
otherwise. Finishing (store/batch_completion.py) happens once, guarded by the row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Row

from quebec.errors import BatchAlreadyFinished
from quebec.store.database import Tx
from quebec.store.jobs import enqueue_many
from quebec.types import EnqueuedJobs, JobState, NewJobs


@dataclass(frozen=True, slots=True)
class BatchRow:
    """One batches row, with the live counts of its jobs (outstanding, failed now)."""

    id: int
    active_job_batch_id: str | None
    description: str | None
    on_finish: str | None
    on_success: str | None
    on_failure: str | None
    metadata: str | None
    total_jobs: int
    completed_jobs: int
    failed_jobs: int
    enqueued_at: datetime | None
    finished_at: datetime | None
    failed_at: datetime | None
    created_at: datetime | None
    updated_at: datetime | None
    pending_jobs: int = 0
    live_failed_jobs: int = 0


@dataclass(frozen=True, slots=True)
class NewBatch:
    """What `create` inserts: callbacks as serialized job descriptors, metadata as JSON."""

    active_job_batch_id: str
    description: str | None = None
    on_finish: str | None = None
    on_success: str | None = None
    on_failure: str | None = None
    metadata: str | None = None


def create(tx: Tx, batch: NewBatch) -> int:
    """∅ → pending: a batch row that jobs can join; returns its id."""
    t = tx.tables.batches
    values = {
        "active_job_batch_id": batch.active_job_batch_id,
        "description": batch.description,
        "on_finish": batch.on_finish,
        "on_success": batch.on_success,
        "on_failure": batch.on_failure,
        "metadata": batch.metadata,
        "total_jobs": 0,
        "completed_jobs": 0,
        "failed_jobs": 0,
        "created_at": tx.now,
        "updated_at": tx.now,
    }
    tx.conn.execute(insert(t).values(values))
    found = tx.conn.scalar(select(t.c.id).where(t.c.active_job_batch_id == batch.active_job_batch_id))
    assert found is not None
    return int(found)


def with_batch_id(envelope: str, batch_id: int) -> str:
    """The envelope with the top-level "batch_id" the wheel writes (keys are sorted, so it goes
    right before "enqueued_at"; the last unescaped `,"enqueued_at":` is the top-level key)."""
    at = envelope.rfind(',"enqueued_at":')
    if at < 0:
        return envelope
    return f'{envelope[:at]},"batch_id":{batch_id}{envelope[at:]}'


def enqueue_into(tx: Tx, batch_id: int, rows: NewJobs) -> EnqueuedJobs:
    """∅ → ready/scheduled/blocked, as enqueue_many, for jobs that join batch `batch_id`.

    The batch row is locked first, by primary key, and its total raised: a flush finishing
    the batch's last job waits for this transaction, or finished it already and this one
    raises BatchAlreadyFinished, writing nothing. (Locked by `id` alone: an UPDATE that also
    said `finished_at IS NULL` was run by MariaDB along the finished_at index, locking that
    index's entry before the row, the reverse of a finishing flush, which locks the row
    first and then moves the entry; the two deadlocked.)
    """
    t = tx.tables.batches
    n = len(rows.arguments)
    found = tx.conn.execute(select(t.c.finished_at).where(t.c.id == batch_id).with_for_update()).first()
    if found is None:
        raise BatchAlreadyFinished(
            f"batch {batch_id} does not exist (cleared, or never created); enqueue outside it, or in a new qc.batch()"
        )
    if found.finished_at is not None:
        raise BatchAlreadyFinished(f"Can't add jobs to batch {batch_id}: it has already finished")
    tx.conn.execute(update(t).where(t.c.id == batch_id).values(total_jobs=t.c.total_jobs + n, updated_at=tx.now))
    rows.arguments[:] = [with_batch_id(a, batch_id) for a in rows.arguments]
    enqueued = enqueue_many(tx, rows)
    # A duplicate of a unique job is answered with the job it duplicates: that one does not
    # join. A job finished at once (discarded on a concurrency conflict) joins completed.
    new = [
        i for i, (mine, got) in enumerate(zip(rows.active_job_ids, enqueued.active_job_ids, strict=True)) if mine == got
    ]
    if len(new) < n:
        tx.conn.execute(update(t).where(t.c.id == batch_id).values(total_jobs=t.c.total_jobs - (n - len(new))))
    track(tx, batch_id, [enqueued.ids[i] for i in new if enqueued.states[i] is not JobState.FINISHED])
    jobs = tx.tables.jobs
    ended = [enqueued.ids[i] for i in new if enqueued.states[i] is JobState.FINISHED]
    if ended:
        tx.conn.execute(update(jobs).where(jobs.c.id.in_(ended)).values(batch_id=batch_id))
    return enqueued


def track(tx: Tx, batch_id: int, job_ids: Sequence[int]) -> None:
    """Mark jobs (new rows) as outstanding members of a batch: jobs.batch_id and batch_executions."""
    if not job_ids:
        return
    jobs = tx.tables.jobs
    tx.conn.execute(update(jobs).where(jobs.c.id.in_(list(job_ids))).values(batch_id=batch_id))
    tx.conn.execute(
        insert(tx.tables.batch_executions),
        [{"job_id": j, "batch_id": batch_id, "created_at": tx.now} for j in job_ids],
    )


def find(tx: Tx, *, batch_id: int | None = None, active_job_batch_id: str | None = None) -> BatchRow | None:
    """The batch with this id (or active_job_batch_id) and its live counts, or None."""
    t = tx.tables.batches
    where = t.c.id == batch_id if batch_id is not None else t.c.active_job_batch_id == active_job_batch_id
    row = tx.conn.execute(select(t).where(where)).first()
    if row is None:
        return None
    pending, failed = live_counts(tx, int(row.id))
    return batch_row(row, pending, failed)


def live_counts(tx: Tx, batch_id: int) -> tuple[int, int]:
    """(outstanding, failed now): batch_executions rows, and failed_executions of its jobs."""
    be, fe, jobs = tx.tables.batch_executions, tx.tables.failed_executions, tx.tables.jobs
    pending = tx.conn.scalar(select(func.count()).select_from(be).where(be.c.batch_id == batch_id))
    failed = tx.conn.scalar(
        select(func.count()).select_from(fe.join(jobs, jobs.c.id == fe.c.job_id)).where(jobs.c.batch_id == batch_id)
    )
    return int(pending or 0), int(failed or 0)


def batch_row(row: Row[object], pending: int, failed: int) -> BatchRow:
    m = row._mapping
    return BatchRow(
        id=int(m["id"]),
        active_job_batch_id=m["active_job_batch_id"],
        description=m["description"],
        on_finish=m["on_finish"],
        on_success=m["on_success"],
        on_failure=m["on_failure"],
        metadata=m["metadata"],
        total_jobs=int(m["total_jobs"] or 0),
        completed_jobs=int(m["completed_jobs"] or 0),
        failed_jobs=int(m["failed_jobs"] or 0),
        enqueued_at=m["enqueued_at"],
        finished_at=m["finished_at"],
        failed_at=m["failed_at"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        pending_jobs=pending,
        live_failed_jobs=failed,
    )


def clear_finished(tx: Tx, *, finished_before: datetime, batch_size: int) -> int:
    """Delete up to `batch_size` succeeded batches finished before `finished_before` (failed
    ones are kept, like failed jobs); returns how many. Call again until it returns less."""
    t = tx.tables.batches
    ids = list(
        tx.conn.scalars(
            select(t.c.id)
            .where(t.c.finished_at < finished_before, t.c.failed_at.is_(None))
            .order_by(t.c.id)
            .limit(batch_size)
        )
    )
    if ids:
        tx.conn.execute(delete(t).where(t.c.id.in_(ids)))
    return len(ids)
