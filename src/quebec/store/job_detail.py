"""Read model for the dashboard's job page: the job (queries.get_job), the execution rows
it has now, a timeline of what happened to it, and its retry chain: every row sharing its
active_job_id, oldest first."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from quebec.store import queries
from quebec.store.database import Tx
from quebec.store.queries import JobRow
from quebec.types import JobState

CHAIN_MAX = 100


@dataclass(frozen=True, slots=True)
class Moment:
    at: datetime
    what: str  # a fixed phrase: "enqueued", "scheduled for", "claimed", ...
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Attempt:
    id: int
    state: JobState
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class JobDetail:
    job: JobRow
    concurrency_key: str | None
    executions: dict[str, dict[str, Any]]  # execution table short name -> its row
    timeline: list[Moment] = field(default_factory=list)
    chain: list[Attempt] = field(default_factory=list)
    recurring_task: str | None = None


def job_detail(tx: Tx, *, job_id: int) -> JobDetail | None:
    job = queries.get_job(tx, job_id=job_id)
    if job is None:
        return None
    t = tx.tables
    key = tx.conn.execute(select(t.jobs.c.concurrency_key).where(t.jobs.c.id == job_id)).scalar()
    executions: dict[str, dict[str, Any]] = {}
    for name, table in (
        ("ready", t.ready_executions),
        ("scheduled", t.scheduled_executions),
        ("blocked", t.blocked_executions),
        ("claimed", t.claimed_executions),
        ("failed", t.failed_executions),
        ("recurring", t.recurring_executions),
    ):
        row = tx.conn.execute(select(table).where(table.c.job_id == job_id)).first()
        if row is not None:
            executions[name] = dict(row._mapping)
    return JobDetail(
        job=job,
        concurrency_key=key,
        executions=executions,
        timeline=_timeline(job, executions),
        chain=_chain(tx, job),
        recurring_task=executions.get("recurring", {}).get("task_key"),
    )


def _timeline(job: JobRow, executions: dict[str, dict[str, Any]]) -> list[Moment]:
    moments = [Moment(job.created_at, "enqueued")]
    if job.scheduled_at is not None and job.scheduled_at > job.created_at:
        moments.append(Moment(job.scheduled_at, "scheduled for"))
    if "blocked" in executions:
        b = executions["blocked"]
        moments.append(Moment(b["created_at"], "blocked", f"on {b['concurrency_key']} until {b['expires_at']}"))
    if "ready" in executions:
        moments.append(Moment(executions["ready"]["created_at"], "ready"))
    if "claimed" in executions:
        c = executions["claimed"]
        moments.append(Moment(c["created_at"], "claimed", f"by process {c['process_id']}"))
    if "failed" in executions:
        error = job.error or {}
        moments.append(Moment(executions["failed"]["created_at"], "failed", str(error.get("exception_class") or "")))
    if job.finished_at is not None:
        moments.append(Moment(job.finished_at, job.status.value))
    return sorted(moments, key=lambda m: m.at)


def _after_failures(job: JobRow) -> bool:
    """Whether runs before this row's own failed: the envelope's `executions` counts every
    failed run of the job, this row's own too once it failed."""
    own = 1 if job.state is JobState.FAILED or job.ending in ("retried", "discarded") else 0
    return job.attempts - own > 0


def _chain(tx: Tx, job: JobRow) -> list[Attempt]:
    """Every attempt sharing the job's active_job_id. A first attempt that was not retried
    has none, and then nothing is read: active_job_id has no index, so the search reads the
    whole jobs table."""
    if not job.active_job_id or (not _after_failures(job) and job.next_job_id is None):
        return [Attempt(job.id, job.state, job.created_at, job.finished_at)]
    jobs = tx.tables.jobs
    stmt = queries.with_executions(select(jobs.c.id, jobs.c.created_at, jobs.c.finished_at), tx.tables).where(
        jobs.c.active_job_id == job.active_job_id
    )
    rows = tx.conn.execute(stmt.order_by(jobs.c.id).limit(CHAIN_MAX))
    return [Attempt(r.id, queries.state_of(r), r.created_at, r.finished_at) for r in rows]
