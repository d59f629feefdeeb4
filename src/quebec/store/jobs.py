"""Enqueue: ∅ → ready | scheduled. The only enqueue path; one job is enqueue_many([job])."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import update

from quebec.store.database import Tx, one_statement_when
from quebec.types import Enqueued, JobState, NewJob

# The NOTIFY channel; app.py may rename it from QUEBEC_NAME before any enqueue.
NOTIFY_CHANNEL = ["quebec"]


_JOB_COLUMNS = ("queue_name", "class_name", "arguments", "priority", "active_job_id", "scheduled_at",
                "concurrency_key", "created_at", "updated_at")
_READY_COLUMNS = ("job_id", "queue_name", "priority", "created_at")
_SCHEDULED_COLUMNS = ("job_id", "queue_name", "priority", "scheduled_at", "created_at")


@one_statement_when(lambda dialect, _kwargs: dialect.supports_modifying_cte)
def enqueue_many(tx: Tx, jobs: Sequence[NewJob]) -> list[Enqueued]:
    """∅ → ready (due now) or scheduled (due later), in a few statements for any number of jobs."""
    if not jobs:
        return []
    t, d = tx.tables, tx.dialect
    now = tx.now
    db_now = d.to_db(now)
    converted: dict[Any, Any] = {}  # jobs of one batch mostly share one scheduled_at

    def to_db(value: Any) -> Any:
        found = converted.get(value)
        if found is None:
            found = converted[value] = d.to_db(value)
        return found

    rows = [(j.queue_name, j.class_name, j.arguments, j.priority, j.active_job_id, to_db(j.scheduled_at),
             j.concurrency_key, db_now, db_now) for j in jobs]
    channel = NOTIFY_CHANNEL[0] if d.supports_listen else None
    done = d.enqueue_in_one_statement(tx.conn, t.jobs, t.ready_executions, t.scheduled_executions, _JOB_COLUMNS,
                                      rows, now=db_now, channel=channel)
    if done is not None:
        return [Enqueued(job_id, job.active_job_id, JobState.SCHEDULED if later else JobState.READY)
                for (job_id, later), job in zip(done, jobs, strict=True)]
    ids = d.insert_returning_ids(tx.conn, t.jobs, _JOB_COLUMNS, rows, key="active_job_id")
    ready: list[tuple[Any, ...]] = []
    scheduled: list[tuple[Any, ...]] = []
    out: list[Enqueued] = []
    for job_id, job, row in zip(ids, jobs, rows, strict=True):
        if job.scheduled_at > now:
            scheduled.append((job_id, job.queue_name, job.priority, row[5], db_now))
            out.append(Enqueued(job_id, job.active_job_id, JobState.SCHEDULED))
        else:
            ready.append((job_id, job.queue_name, job.priority, db_now))
            out.append(Enqueued(job_id, job.active_job_id, JobState.READY))
    if ready:
        d.insert_rows(tx.conn, t.ready_executions, _READY_COLUMNS, ready)
        announce(tx, {r[1] for r in ready})
    if scheduled:
        d.insert_rows(tx.conn, t.scheduled_executions, _SCHEDULED_COLUMNS, scheduled)
    return out


def announce(tx: Tx, queues: set[str]) -> None:
    """Tell listening workers in other processes that these queues have ready jobs."""
    if tx.dialect.supports_listen:
        for queue in sorted(queues):
            tx.dialect.notify(tx.conn, NOTIFY_CHANNEL[0], queue)


def cancel(tx: Tx, *, job_ids: Sequence[int]) -> list[int]:
    """ready | scheduled | blocked → finished: jobs that have not started will not run.

    A job already claimed (running) or failed is left alone and not returned.
    """
    t = tx.tables
    ids = list(job_ids)
    gone: list[int] = []
    for table in (t.ready_executions, t.scheduled_executions, t.blocked_executions):
        gone.extend(tx.dialect.delete_returning(tx.conn, table, table.c.job_id.in_(ids)))
    if gone:
        tx.conn.execute(update(t.jobs).where(t.jobs.c.id.in_(gone)).values(finished_at=tx.now, updated_at=tx.now))
    return sorted(gone)
