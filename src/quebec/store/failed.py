"""failed → ready | blocked (retry) or → finished (discard)."""

from __future__ import annotations

from collections.abc import Sequence

from quebec.store.database import Tx
from quebec.store.finished import mark_finished
from quebec.store.routing import to_ready
from quebec.types import JobStatus


def retry_failed(tx: Tx, *, job_ids: Sequence[int]) -> int:
    """failed → ready (or blocked, when its concurrency key has no slot free): the same job row runs again."""
    failed = tx.tables.failed_executions
    held = tx.dialect.delete_returning(tx.conn, failed, failed.c.job_id.in_(list(job_ids)))
    to_ready(tx, held, holding=False)
    return len(held)


def discard_failed(tx: Tx, *, job_ids: Sequence[int]) -> int:
    """failed → finished: give up on the job (its row is kept unless preserve_finished_jobs is off)."""
    failed = tx.tables.failed_executions
    held = tx.dialect.delete_returning(tx.conn, failed, failed.c.job_id.in_(list(job_ids)))
    mark_finished(tx, held, status=JobStatus.DISCARDED)
    return len(held)
