"""finished → deleted, in batches."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select

from quebec.store.database import Tx


def clear_finished(tx: Tx, *, finished_before: datetime, limit: int = 500) -> int:
    jobs = tx.tables.jobs
    ids = list(
        tx.conn.scalars(
            select(jobs.c.id).where(jobs.c.finished_at < finished_before).order_by(jobs.c.finished_at).limit(limit)
        )
    )
    if ids:
        tx.conn.execute(delete(jobs).where(jobs.c.id.in_(ids)))
    return len(ids)
