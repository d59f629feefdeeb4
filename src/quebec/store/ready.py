"""ready → claimed."""

from __future__ import annotations

from sqlalchemy import insert, select

from quebec.store.database import Tx
from quebec.store.rows import claimed_job
from quebec.types import ClaimedJob, QueueSelector


def claim(tx: Tx, *, queues: QueueSelector, limit: int, process_id: int) -> list[ClaimedJob]:
    """ready → claimed: up to `limit` jobs, lowest priority number first, queues in selector order.

    Rows other workers hold are skipped (SKIP LOCKED); on SQLite the write lock taken
    by BEGIN IMMEDIATE makes the claim exclusive instead. Paused queues are left alone.
    """
    if limit <= 0:
        return []
    t = tx.tables
    ready = t.ready_executions
    paused = select(t.pauses.c.queue_name).scalar_subquery()
    picked: list[int] = []
    groups = [None] if queues.is_all else list(queues.patterns)
    for pattern in groups:
        remaining = limit - len(picked)
        if remaining <= 0:
            break
        stmt = select(ready.c.job_id).where(ready.c.queue_name.not_in(paused))
        if pattern is not None and pattern.endswith("*"):
            stmt = stmt.where(ready.c.queue_name.startswith(pattern[:-1], autoescape=True))
        elif pattern is not None:
            stmt = stmt.where(ready.c.queue_name == pattern)
        if picked:
            stmt = stmt.where(ready.c.job_id.not_in(picked))
        stmt = stmt.order_by(ready.c.priority, ready.c.job_id).limit(remaining)
        picked.extend(tx.conn.scalars(tx.dialect.lock_skip_locked(stmt)))
    if not picked:
        return []
    held = tx.dialect.delete_returning(tx.conn, ready, ready.c.job_id.in_(picked))
    if not held:
        return []
    tx.conn.execute(insert(t.claimed_executions),
                    [{"job_id": j, "process_id": process_id, "created_at": tx.now} for j in held])
    jobs = t.jobs
    rows = tx.conn.execute(select(jobs).where(jobs.c.id.in_(held)).order_by(jobs.c.priority, jobs.c.id))
    return [claimed_job(r) for r in rows]
