"""job_results: how a job ended and what perform returned, written in the transaction that ends it.

The Solid Queue tables say only "finished" (finished_at set) for a job that returned, was
discarded, was cancelled or was retried (its next attempt is a new row). One row here
tells them apart, carries the JSON of perform's return value, and for a retry points at
the next attempt (`next_job_id`), so a waiter follows the chain without an index on
active_job_id.

Rows are written only where they say something: a job that finished returning None
under preserve_finished_jobs=True writes none (its job row says it all), so the common
case costs nothing. Under preserve_finished_jobs=False the job row is deleted, so a row
is always written, for a waiter to find.

On PostgreSQL every transaction that ends jobs also NOTIFYs `<channel>_done`, so a
waiter in another process wakes without polling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import delete, insert, select

from quebec import values
from quebec.store.database import Tx
from quebec.store.error_record import read_error
from quebec.store.queries import state_of, with_executions
from quebec.types import JobState, JobStatus

DONE_SUFFIX = "_done"


class Ending(NamedTuple):
    """One job's end, to record: its status, perform's return value as JSON, its next attempt."""

    job_id: int
    status: JobStatus = JobStatus.FINISHED
    result: str | None = None
    next_job_id: int | None = None


def ended(tx: Tx, endings: Sequence[Ending], *, preserve: bool | None = None) -> None:
    """Record `endings` (jobs this transaction just moved to finished) and tell waiters.

    Callers pass every job they finished; the rule of which need a row lives here.
    """
    keep = tx.preserve_finished if preserve is None else preserve
    if tx.keeps_results:
        rows = [
            {
                "job_id": e.job_id,
                "status": e.status.value,
                "result": e.result,
                "next_job_id": e.next_job_id,
                "created_at": tx.now,
            }
            for e in endings
            if not keep or e.status is not JobStatus.FINISHED or e.result is not None
        ]
        if rows:
            tx.conn.execute(insert(tx.tables.job_results), rows)
    if endings:
        announce_done(tx)


def announce_done(tx: Tx) -> None:
    """Wake waiters once this transaction commits: in this process (the Database's pulse)
    and, on PostgreSQL, in every other (NOTIFY is delivered at commit). Once per transaction."""
    pulse = tx.ended
    if pulse is None or pulse.beat in tx.after_commit:
        return
    tx.after_commit.append(pulse.beat)
    if tx.dialect.supports_listen:
        tx.dialect.notify(tx.conn, tx.channel + DONE_SUFFIX, "")


@dataclass(frozen=True, slots=True)
class Progress:
    """Where one job is, as a waiter sees it: its status, and its result or error once final."""

    job_id: int
    status: JobStatus | None  # None: no such job (never enqueued, or cleared)
    result: Any = None
    error: dict[str, Any] | None = None
    next_job_id: int | None = None


def progress(tx: Tx, *, job_ids: Sequence[int]) -> dict[int, Progress]:
    """Each job's status (no retry chain followed: a RETRIED one names its next attempt).

    One statement reads the job rows with their execution and result rows: under READ
    COMMITTED each statement sees its own snapshot, so reading them apart could see a job
    finished without the result committed with it. Only jobs whose row is gone (deleted
    at finish under preserve_finished_jobs=False) take a second statement, for their result.
    """
    t = tx.tables
    ids = list(job_ids)
    if not ids:
        return {}
    jobs, ended = t.jobs, t.job_results
    ending_columns = (ended.c.status, ended.c.result, ended.c.next_job_id) if tx.keeps_results else ()
    stmt = with_executions(select(jobs.c.id, t.failed_executions.c.error, *ending_columns), t).where(jobs.c.id.in_(ids))
    if tx.keeps_results:
        stmt = stmt.outerjoin(ended, ended.c.job_id == jobs.c.id)
    rows = {row.id: row for row in tx.conn.execute(stmt)}
    gone = [job_id for job_id in ids if job_id not in rows]
    orphans: dict[int, Any] = {}
    if gone and tx.keeps_results:
        orphans = {row.job_id: row for row in tx.conn.execute(select(ended).where(ended.c.job_id.in_(gone)))}
    return {job_id: _progress(job_id, rows.get(job_id), orphans.get(job_id)) for job_id in ids}


def _progress(job_id: int, row: Any, orphan: Any) -> Progress:
    """`row`: the job with its execution marks (and result columns); `orphan`: the result row
    of a job whose row is gone."""
    ending = orphan if row is None else (row if getattr(row, "status", None) is not None else None)
    if row is not None:
        match state_of(row):
            case JobState.FAILED:
                return Progress(job_id, JobStatus.FAILED, error=read_error(row.error))
            case JobState.CLAIMED:
                return Progress(job_id, JobStatus.RUNNING)
            case JobState.FINISHED:
                pass  # how it ended: the ending below
            case state:
                return Progress(job_id, JobStatus(state.value))
    if ending is not None:
        return Progress(
            job_id,
            JobStatus(ending.status),
            result=values.loads(ending.result) if ending.result is not None else None,
            next_job_id=ending.next_job_id,
        )
    if row is not None:  # finished_at set (or, for a row the wheel left odd, nothing at all)
        return Progress(job_id, JobStatus.FINISHED)
    return Progress(job_id, None)


def prune(tx: Tx, *, before: datetime, batch_size: int) -> int:
    """Delete up to `batch_size` result rows written before `before`; returns how many."""
    if not tx.keeps_results:
        return 0
    r = tx.tables.job_results
    ids = list(tx.conn.scalars(select(r.c.job_id).where(r.c.created_at < before).limit(batch_size)))
    if ids:
        tx.conn.execute(delete(r).where(r.c.job_id.in_(ids)))
    return len(ids)
