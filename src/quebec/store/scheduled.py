"""scheduled → ready (dispatch) or → finished (cancel)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, insert, select

from quebec.store.database import Tx
from quebec.store.finished import mark_finished
from quebec.store.jobs import announce
from quebec.types import JobStatus


def dispatch_due(tx: Tx, *, limit: int) -> int:
    """scheduled → ready for up to `limit` jobs whose time has come; returns how many moved.

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
    tx.conn.execute(
        insert(tx.tables.ready_executions),
        [{"job_id": r.job_id, "queue_name": r.queue_name, "priority": r.priority, "created_at": tx.now} for r in rows],
    )
    announce(tx, {r.queue_name for r in rows})
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
