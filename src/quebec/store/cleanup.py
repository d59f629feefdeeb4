"""finished → deleted, in batches."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select

from quebec.store import results
from quebec.store.database import Tx


def _clearable(jobs: Any, finished_before: datetime) -> Any:
    return jobs.c.finished_at < finished_before


def clear_finished(tx: Tx, *, finished_before: datetime, limit: int = 500) -> int:
    """Delete up to `limit` jobs finished before the cut-off, and results recorded before it
    (a result lives as long as its finished job would, even when its row went at once)."""
    results.prune(tx, before=finished_before, batch_size=limit)
    jobs = tx.tables.jobs
    ids = list(
        tx.conn.scalars(
            select(jobs.c.id).where(_clearable(jobs, finished_before)).order_by(jobs.c.finished_at).limit(limit)
        )
    )
    if ids:
        tx.conn.execute(delete(jobs).where(jobs.c.id.in_(ids)))
    return len(ids)


def count_finished(tx: Tx, *, finished_before: datetime) -> int:
    """How many jobs clear_finished would delete, in all batches, for this cut-off."""
    jobs = tx.tables.jobs
    return int(tx.conn.scalar(select(func.count()).select_from(jobs).where(_clearable(jobs, finished_before))) or 0)
