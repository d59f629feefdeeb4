"""Read models for batches (the dashboard's and the CLI's): one page of batches, newest
first, keyset-paged by id; one batch with its callbacks and a page of its member jobs; the
batch a job belongs to (as a member, or as one of its callbacks).

A batch row's counters are written when it finishes; for the unfinished batches of a page
the live counts are read as store.batches.find reads them (batch_executions rows, failed
members), two grouped statements per page, so quebec.Batch reports the same numbers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from quebec.batch_context import CALLBACK_KEY
from quebec.store import queries
from quebec.store.batches import BatchRow, batch_row, find
from quebec.store.database import Tx
from quebec.types import JobState

PAGE_MAX = 200
STATUSES = ("pending", "enqueued", "completed", "failed")
CALLBACK_ROLES = ("on_success", "on_failure", "on_finish")
# Member jobs by how they stand: not ended yet, ended (finished, discarded, retried), failed.
MEMBER_FILTERS = ("pending", "completed", "failed")


@dataclass(frozen=True, slots=True)
class BatchPage:
    batches: list[BatchRow]
    next_before: int | None  # the `before` of the next (older) page; None on the last page


@dataclass(frozen=True, slots=True)
class Callback:
    """A callback as stored on the batch row, and the job it became once the batch finished."""

    role: str  # on_success, on_failure or on_finish
    class_name: str
    queue_name: str | None
    arguments: Any
    descriptor: str
    job_id: int | None = None


@dataclass(frozen=True, slots=True)
class Member:
    id: int
    class_name: str
    queue_name: str
    state: JobState
    ending: str | None
    created_at: datetime
    finished_at: datetime | None

    @property
    def status(self) -> str:
        if self.state is JobState.CLAIMED:
            return "running"
        return self.ending if self.state is JobState.FINISHED and self.ending else self.state.value


@dataclass(frozen=True, slots=True)
class BatchDetail:
    batch: BatchRow
    callbacks: list[Callback]
    members: list[Member]
    next_before: int | None  # the `before` of the next (older) page of members


@dataclass(frozen=True, slots=True)
class JobBatch:
    """The batch a job belongs to: as a member, or as a callback it enqueued."""

    batch_id: int
    role: str  # "member" or "callback"
    description: str | None
    exists: bool  # False once the batch was cleared


def _page_limit(limit: object, what: str) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= PAGE_MAX:
        raise ValueError(f"a page holds 1 to {PAGE_MAX} {what}, not {limit!r}")
    return limit


def list_batches(tx: Tx, *, status: str | None = None, before: int | None = None, limit: int = 50) -> BatchPage:
    """Batches with id < before (all when None), newest first, at most `limit`; of one status
    (pending, enqueued, completed or failed, as quebec.Batch.status) when given."""
    _page_limit(limit, "batches")
    t = tx.tables.batches
    stmt = select(t)
    if status is not None:
        if status not in STATUSES:
            raise ValueError(f"batch status {status!r} is not one of {', '.join(STATUSES)}")
        stmt = stmt.where(
            *{
                "pending": (t.c.enqueued_at.is_(None), t.c.finished_at.is_(None)),
                "enqueued": (t.c.enqueued_at.is_not(None), t.c.finished_at.is_(None)),
                "completed": (t.c.finished_at.is_not(None), t.c.failed_at.is_(None)),
                "failed": (t.c.finished_at.is_not(None), t.c.failed_at.is_not(None)),
            }[status]
        )
    if before is not None:
        stmt = stmt.where(t.c.id < before)
    rows = list(tx.conn.execute(stmt.order_by(t.c.id.desc()).limit(limit + 1)))
    page = rows[:limit]
    open_ids = [int(r.id) for r in page if r.finished_at is None]
    pending, failed = _live_counts(tx, open_ids)
    listed = [batch_row(r, pending.get(int(r.id), 0), failed.get(int(r.id), 0)) for r in page]
    return BatchPage(listed, listed[-1].id if len(rows) > limit else None)


def _live_counts(tx: Tx, batch_ids: Sequence[int]) -> tuple[dict[int, int], dict[int, int]]:
    """{batch: outstanding} and {batch: failed now} for these batches, in two statements."""
    if not batch_ids:
        return {}, {}
    be, fe, jobs = tx.tables.batch_executions, tx.tables.failed_executions, tx.tables.jobs
    ids = list(batch_ids)
    pending = tx.conn.execute(select(be.c.batch_id, func.count()).where(be.c.batch_id.in_(ids)).group_by(be.c.batch_id))
    failed = tx.conn.execute(
        select(jobs.c.batch_id, func.count())
        .select_from(fe.join(jobs, jobs.c.id == fe.c.job_id))
        .where(jobs.c.batch_id.in_(ids))
        .group_by(jobs.c.batch_id)
    )
    return {int(b): int(n) for b, n in pending}, {int(b): int(n) for b, n in failed}


def batch_detail(
    tx: Tx, *, batch_id: int, before: int | None = None, limit: int = 50, jobs_status: str | None = None
) -> BatchDetail | None:
    """The batch, its callbacks, and its member jobs with id < before, newest first; only
    those pending, completed or failed (MEMBER_FILTERS) when `jobs_status` is given."""
    _page_limit(limit, "jobs")
    if jobs_status is not None and jobs_status not in MEMBER_FILTERS:
        raise ValueError(f"member job status {jobs_status!r} is not one of {', '.join(MEMBER_FILTERS)}")
    batch = find(tx, batch_id=batch_id)
    if batch is None:
        return None
    jobs = tx.tables.jobs
    stmt = queries.with_executions(
        select(jobs.c.id, jobs.c.class_name, jobs.c.queue_name, jobs.c.created_at, jobs.c.finished_at), tx.tables
    ).where(jobs.c.batch_id == batch_id)
    if tx.keeps_results:
        ended = tx.tables.job_results
        stmt = stmt.add_columns(ended.c.status.label("ending")).outerjoin(ended, ended.c.job_id == jobs.c.id)
    failed = tx.tables.failed_executions.c.id
    if jobs_status == "failed":
        stmt = stmt.where(failed.is_not(None))
    elif jobs_status == "completed":
        stmt = stmt.where(failed.is_(None), jobs.c.finished_at.is_not(None))
    elif jobs_status == "pending":
        stmt = stmt.where(failed.is_(None), jobs.c.finished_at.is_(None))
    if before is not None:
        stmt = stmt.where(jobs.c.id < before)
    rows = list(tx.conn.execute(stmt.order_by(jobs.c.id.desc()).limit(limit + 1)))
    members = [
        Member(
            id=int(r.id),
            class_name=r.class_name,
            queue_name=r.queue_name,
            state=queries.state_of(r),
            ending=r._mapping.get("ending"),
            created_at=r.created_at,
            finished_at=r.finished_at,
        )
        for r in rows[:limit]
    ]
    next_before = members[-1].id if len(rows) > limit else None
    return BatchDetail(batch, _callbacks(tx, batch), members, next_before)


def _callbacks(tx: Tx, batch: BatchRow) -> list[Callback]:
    """The stored callback descriptors; for a finished batch, with the jobs they became: the
    finishing transaction enqueued them with created_at = the batch's finished_at, their
    envelope marked with the batch's id (found through the class_name index)."""
    stored = {"on_success": batch.on_success, "on_failure": batch.on_failure, "on_finish": batch.on_finish}
    out: list[Callback] = []
    for role in CALLBACK_ROLES:
        text = stored[role]
        if not text:
            continue
        try:
            d = json.loads(text)
        except ValueError:
            d = {}
        d = d if isinstance(d, dict) else {}
        out.append(Callback(role, str(d.get("job_class") or "?"), d.get("queue_name"), d.get("arguments"), text))
    if batch.finished_at is None or not out:
        return out
    jobs = tx.tables.jobs
    found = tx.conn.execute(
        select(jobs.c.id, jobs.c.class_name)
        .where(
            jobs.c.class_name.in_(sorted({c.class_name for c in out})),
            jobs.c.created_at == batch.finished_at,
            jobs.c.arguments.contains(f'"{CALLBACK_KEY}":{batch.id},', autoescape=True),
        )
        .order_by(jobs.c.id)
        .limit(len(CALLBACK_ROLES))
    ).all()
    # Enqueued in role order (the outcome's callback first, then on_finish); the one not
    # taken (on_success of a failed batch) has no job.
    fired = [c for c in out if c.role == "on_finish" or (c.role == "on_failure") == (batch.failed_at is not None)]
    by_class = [(int(i), name) for i, name in found]
    matched: dict[str, int] = {}
    for callback in fired:
        hit = next((i for i, name in by_class if name == callback.class_name), None)
        if hit is not None:
            matched[callback.role] = hit
            by_class = [(i, name) for i, name in by_class if i != hit]
    return [Callback(c.role, c.class_name, c.queue_name, c.arguments, c.descriptor, matched.get(c.role)) for c in out]


def batch_of_job(tx: Tx, *, job_id: int) -> JobBatch | None:
    """The batch the job is a member of (jobs.batch_id), or the one whose callback it is
    (its envelope's callback_batch_id); None for a job outside batches."""
    jobs, t = tx.tables.jobs, tx.tables.batches
    row = tx.conn.execute(select(jobs.c.batch_id, jobs.c.arguments).where(jobs.c.id == job_id)).first()
    if row is None:
        return None
    role, batch_id = "member", row.batch_id
    if batch_id is None:
        role, batch_id = "callback", _callback_batch_id(row.arguments)
    if batch_id is None:
        return None
    description = tx.conn.execute(select(t.c.description).where(t.c.id == batch_id)).first()
    return JobBatch(int(batch_id), role, None if description is None else description[0], description is not None)


def _callback_batch_id(arguments: str | None) -> int | None:
    if not arguments or f'"{CALLBACK_KEY}"' not in arguments:
        return None
    try:
        envelope = json.loads(arguments)
    except ValueError:
        return None
    value = envelope.get(CALLBACK_KEY) if isinstance(envelope, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None
