"""failed → ready (retry) or → finished (discard)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import update

from quebec.store.claimed import to_ready
from quebec.store.database import Tx


def retry_failed(tx: Tx, *, job_ids: Sequence[int]) -> int:
    """failed → ready: the same job row runs again."""
    failed = tx.tables.failed_executions
    held = tx.dialect.delete_returning(tx.conn, failed, failed.c.job_id.in_(list(job_ids)))
    to_ready(tx, held)
    return len(held)


def discard_failed(tx: Tx, *, job_ids: Sequence[int]) -> int:
    """failed → finished: give up on the job, keep its row."""
    failed, jobs = tx.tables.failed_executions, tx.tables.jobs
    held = tx.dialect.delete_returning(tx.conn, failed, failed.c.job_id.in_(list(job_ids)))
    if held:
        tx.conn.execute(update(jobs).where(jobs.c.id.in_(held)).values(finished_at=tx.now, updated_at=tx.now))
    return len(held)
