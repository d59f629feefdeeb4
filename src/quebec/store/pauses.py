"""Queue pauses: a paused queue's ready jobs stay ready and are not claimed."""

from __future__ import annotations

from sqlalchemy import delete, select

from quebec.store.database import Tx


def pause(tx: Tx, *, queue_name: str) -> bool:
    return tx.dialect.insert_if_absent(tx.conn, tx.tables.pauses, {"queue_name": queue_name, "created_at": tx.now})


def pause_all(tx: Tx) -> int:
    """Pause every queue that has a job in the jobs table (in any state), as the wheel does;
    returns how many were not paused before. A queue whose first job comes later is not paused."""
    jobs = tx.tables.jobs
    names = list(tx.conn.scalars(select(jobs.c.queue_name).distinct()))
    return sum(pause(tx, queue_name=name) for name in sorted(names))


def resume(tx: Tx, *, queue_name: str) -> bool:
    pauses = tx.tables.pauses
    return bool(tx.conn.execute(delete(pauses).where(pauses.c.queue_name == queue_name)).rowcount)


def resume_all(tx: Tx) -> int:
    """Delete every pause; returns how many there were."""
    return int(tx.conn.execute(delete(tx.tables.pauses)).rowcount)


def is_paused(tx: Tx, *, queue_name: str) -> bool:
    pauses = tx.tables.pauses
    return tx.conn.scalar(select(pauses.c.id).where(pauses.c.queue_name == queue_name).limit(1)) is not None


def paused_queues(tx: Tx) -> list[str]:
    pauses = tx.tables.pauses
    return sorted(tx.conn.scalars(select(pauses.c.queue_name)))
