"""Read models for the CLI, the dashboard, tests and `qc.get_job()`: counts, lists, one job."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select

from quebec import values
from quebec.schema import Tables
from quebec.store.database import Tx
from quebec.store.error_record import read_error
from quebec.types import JobState, JobStatus


@dataclass(frozen=True, slots=True)
class JobRow:
    id: int
    queue_name: str
    class_name: str
    priority: int
    active_job_id: str | None
    arguments: str | None
    scheduled_at: datetime | None
    finished_at: datetime | None
    created_at: datetime
    state: JobState
    error: dict[str, Any] | None = None
    process_id: int | None = None
    started_at: datetime | None = None  # when its claim was taken: known while it runs
    # From job_results (when the table exists): how a finished job ended, what perform
    # returned (JSON text), and a retried attempt's next one.
    ending: str | None = None
    result_json: str | None = None
    next_job_id: int | None = None

    @property
    def enqueued_at(self) -> datetime:
        return self.created_at

    @property
    def status(self) -> JobStatus:
        """The state, with finished told apart (finished, discarded, cancelled, retried) and
        claimed read as running."""
        if self.state is JobState.CLAIMED:
            return JobStatus.RUNNING
        if self.state is JobState.FINISHED and self.ending is not None:
            return JobStatus(self.ending)
        return JobStatus(self.state.value)

    @property
    def result(self) -> Any:
        """What perform returned (None when it returned None, or nothing was kept)."""
        return None if self.result_json is None else values.loads(self.result_json)

    @property
    def attempts(self) -> int:
        """Runs so far that ended in an error (the envelope's `executions`)."""
        try:
            parsed = json.loads(self.arguments or "{}")
        except ValueError:
            return 0
        count = parsed.get("executions", 0) if isinstance(parsed, dict) else 0
        return count if isinstance(count, int) else 0


def state_tables(t: Tables) -> dict[JobState, Any]:
    """The execution table that holds each state's jobs (finished jobs have none)."""
    return {
        JobState.READY: t.ready_executions,
        JobState.SCHEDULED: t.scheduled_executions,
        JobState.CLAIMED: t.claimed_executions,
        JobState.BLOCKED: t.blocked_executions,
        JobState.FAILED: t.failed_executions,
    }


def state_counts(tx: Tx) -> dict[JobState, int]:
    t = tx.tables
    counts = state_tables(t)
    out = {
        state: int(tx.conn.execute(select(func.count()).select_from(table)).scalar() or 0)
        for state, table in counts.items()
    }
    out[JobState.FINISHED] = int(
        tx.conn.execute(select(func.count()).select_from(t.jobs).where(t.jobs.c.finished_at.is_not(None))).scalar() or 0
    )
    return out


def get_job(tx: Tx, *, job_id: int) -> JobRow | None:
    rows = list_jobs(tx, job_ids=[job_id])
    return rows[0] if rows else None


def list_jobs(
    tx: Tx,
    *,
    job_ids: list[int] | None = None,
    state: JobState | None = None,
    class_name: str | None = None,
    queue_name: str | None = None,
    failed_since: datetime | None = None,
    failed_until: datetime | None = None,
    error_like: str | None = None,
    created_since: datetime | None = None,
    ending: JobStatus | None = None,
    after_id: int = 0,
    limit: int = 100,
    newest_first: bool = False,
) -> list[JobRow]:
    """Jobs with their derived state, keyset-paged by id.

    failed_since/failed_until bound when the job failed (failed_executions.created_at, both
    inclusive); error_like is an SQL LIKE pattern matched as given against the stored error
    (its JSON text), as the wheel does: `%` and `_` are wildcards, and case and backslash
    escapes follow the database (PostgreSQL compares case-sensitively, SQLite and MySQL do not).
    All three keep only failed jobs. created_since keeps jobs enqueued at or after it. ending
    keeps finished jobs that ended so (job_results.status; a finished job without a row there,
    as the wheel leaves it, ended finished).
    newest_first orders by id descending (the CLI's latest jobs); after_id pages ascending only.
    """
    t = tx.tables
    jobs = t.jobs
    ended = t.job_results
    ending_columns = (
        (ended.c.status.label("ending"), ended.c.result.label("result_json"), ended.c.next_job_id)
        if tx.keeps_results
        else ()
    )
    stmt = (
        with_executions(
            select(
                jobs,
                *ending_columns,
                t.failed_executions.c.error,
                t.claimed_executions.c.process_id,
                t.claimed_executions.c.created_at.label("started_at"),
            ),
            t,
        )
        .where(jobs.c.id > after_id)
        .order_by(jobs.c.id.desc() if newest_first else jobs.c.id)
        .limit(limit)
    )
    if tx.keeps_results:
        stmt = stmt.outerjoin(ended, ended.c.job_id == jobs.c.id)
    if job_ids is not None:
        stmt = stmt.where(jobs.c.id.in_(job_ids))
    if class_name:
        stmt = stmt.where(jobs.c.class_name == class_name)
    if queue_name:
        stmt = stmt.where(jobs.c.queue_name == queue_name)
    if state is not None:
        stmt = stmt.where(_state_condition(t, state))
    failed = t.failed_executions.c
    if failed_since is not None:
        stmt = stmt.where(failed.created_at >= failed_since)
    if failed_until is not None:
        stmt = stmt.where(failed.created_at <= failed_until)
    if error_like is not None:
        stmt = stmt.where(failed.error.like(error_like))
    if created_since is not None:
        stmt = stmt.where(jobs.c.created_at >= created_since)
    if ending is not None:
        stmt = stmt.where(_state_condition(t, JobState.FINISHED))
        if tx.keeps_results:
            cond = ended.c.status == ending.value
            stmt = stmt.where(cond | ended.c.status.is_(None) if ending is JobStatus.FINISHED else cond)
        elif ending is not JobStatus.FINISHED:
            return []  # nothing records how jobs ended here
    out = []
    for r in tx.conn.execute(stmt):
        out.append(
            JobRow(
                id=r.id,
                queue_name=r.queue_name,
                class_name=r.class_name,
                priority=r.priority,
                active_job_id=r.active_job_id,
                arguments=r.arguments,
                scheduled_at=r.scheduled_at,
                finished_at=r.finished_at,
                created_at=r.created_at,
                state=state_of(r),
                error=read_error(r.error) if r.error else None,
                process_id=r.process_id,
                started_at=r.started_at,
                ending=getattr(r, "ending", None),
                result_json=getattr(r, "result_json", None),
                next_job_id=getattr(r, "next_job_id", None),
            )
        )
    return out


def with_executions(stmt: Select[Any], t: Tables) -> Select[Any]:
    """`stmt` on the jobs table, with each execution table outer-joined and its id selected
    as a mark (r, s, b, c, f) for state_of()."""
    jobs = t.jobs
    for table, mark in (
        (t.ready_executions, "r"),
        (t.scheduled_executions, "s"),
        (t.blocked_executions, "b"),
        (t.claimed_executions, "c"),
        (t.failed_executions, "f"),
    ):
        stmt = stmt.add_columns(table.c.id.label(mark)).outerjoin(table, table.c.job_id == jobs.c.id)
    return stmt


def state_of(r: Any) -> JobState:
    """A job's state from the marks with_executions() selected."""
    # failed is checked before finished: a failed job keeps finished_at NULL, but a
    # row the Rust wheel wrote could carry both, and failed is what needs attention.
    if r.f is not None:
        return JobState.FAILED
    if r.c is not None:
        return JobState.CLAIMED
    if r.r is not None:
        return JobState.READY
    if r.s is not None:
        return JobState.SCHEDULED
    if r.b is not None:
        return JobState.BLOCKED
    return JobState.FINISHED


def _state_condition(t: Any, state: JobState) -> Any:
    table = state_tables(t).get(state)
    if table is not None:
        return table.c.id.is_not(None)
    return t.jobs.c.finished_at.is_not(None) & t.failed_executions.c.id.is_(None)


def processes(tx: Tx) -> list[dict[str, Any]]:
    procs = tx.tables.processes
    return [dict(r._mapping) for r in tx.conn.execute(select(procs).order_by(procs.c.id))]
