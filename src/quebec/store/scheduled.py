"""scheduled → ready | blocked (dispatch) or → finished (cancel)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select

from quebec.store.database import Tx
from quebec.store.finished import mark_finished
from quebec.store.routing import Routed, route
from quebec.types import JobStatus


def dispatch_due(tx: Tx, *, limit: int) -> int:
    """scheduled → ready (or blocked, when their concurrency key has no slot free) for up to
    `limit` jobs whose time has come; returns how many moved.

    Another dispatcher may be moving the same rows: SKIP LOCKED leaves them to it.
    """
    sched = tx.tables.scheduled_executions
    stmt = (
        select(sched.c.job_id, sched.c.queue_name, sched.c.priority)
        .where(sched.c.scheduled_at <= tx.now)
        .order_by(sched.c.scheduled_at, sched.c.priority, sched.c.job_id)
        .limit(limit)
    )
    rows = tx.conn.execute(tx.dialect.lock_skip_locked(stmt)).all()
    if not rows:
        return 0
    ids = [r.job_id for r in rows]
    tx.conn.execute(delete(sched).where(sched.c.job_id.in_(ids)))
    jobs = tx.tables.jobs
    keyed = dict(
        tx.conn.execute(
            select(jobs.c.id, jobs.c.concurrency_key).where(jobs.c.id.in_(ids), jobs.c.concurrency_key.is_not(None))
        ).all()
    )
    route(tx, [Routed(r.job_id, r.queue_name, r.priority, None, keyed.get(r.job_id)) for r in rows])
    return len(rows)


def next_due_at(tx: Tx) -> object:
    """When the earliest scheduled job is due (None when nothing is scheduled)."""
    sched = tx.tables.scheduled_executions
    return tx.conn.execute(select(sched.c.scheduled_at).order_by(sched.c.scheduled_at).limit(1)).scalar()


def cancel_scheduled(tx: Tx, *, job_ids: Sequence[int]) -> int:
    """scheduled → finished: the job will not run."""
    sched = tx.tables.scheduled_executions
    held = tx.dialect.delete_returning(tx.conn, sched, sched.c.job_id.in_(list(job_ids)))
    mark_finished(tx, held, status=JobStatus.CANCELLED)
    return len(held)
