"""Enqueue: ∅ → ready | scheduled. The only enqueue path; one job is enqueue_many([job])."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, update

from quebec.store.database import Tx
from quebec.types import Enqueued, JobState, NewJob

# The NOTIFY channel; app.py may rename it from QUEBEC_NAME before any enqueue.
NOTIFY_CHANNEL = ["quebec"]


def enqueue_many(tx: Tx, jobs: Sequence[NewJob]) -> list[Enqueued]:
    """∅ → ready (due now) or scheduled (due later), in a few statements for any number of jobs."""
    if not jobs:
        return []
    t = tx.tables
    now = tx.now
    rows = [
        {"queue_name": j.queue_name, "class_name": j.class_name, "arguments": j.arguments,
         "priority": j.priority, "active_job_id": j.active_job_id, "scheduled_at": j.scheduled_at,
         "concurrency_key": j.concurrency_key, "created_at": now, "updated_at": now}
        for j in jobs
    ]
    ids = tx.dialect.insert_returning_ids(tx.conn, t.jobs, rows, key="active_job_id")
    ready: list[dict[str, Any]] = []
    scheduled: list[dict[str, Any]] = []
    out: list[Enqueued] = []
    for job_id, job in zip(ids, jobs, strict=True):
        base = {"job_id": job_id, "queue_name": job.queue_name, "priority": job.priority, "created_at": now}
        if job.scheduled_at > now:
            scheduled.append({**base, "scheduled_at": job.scheduled_at})
            out.append(Enqueued(job_id, job.active_job_id, JobState.SCHEDULED))
        else:
            ready.append(base)
            out.append(Enqueued(job_id, job.active_job_id, JobState.READY))
    if ready:
        tx.conn.execute(insert(t.ready_executions), ready)
        announce(tx, {r["queue_name"] for r in ready})
    if scheduled:
        tx.conn.execute(insert(t.scheduled_executions), scheduled)
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
