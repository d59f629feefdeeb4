"""Read model: one page of jobs in one state, newest first, keyset-paged by job id.

Each list starts from its state's execution table (finished: the jobs table's rows with a
finished_at), joins the job rows of that one page, and reads `limit + 1` rows to learn
whether there is a next page: no OFFSET, no count, so a page costs the same on the first
page of ten rows as on the last of a million.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select

from quebec.store.database import Tx
from quebec.store.error_record import read_error
from quebec.store.queries import state_tables
from quebec.types import JobState

PAGE_MAX = 200
# The column of each state's execution table that says when (the list's "at").
_AT = {
    JobState.READY: "created_at",
    JobState.SCHEDULED: "scheduled_at",
    JobState.BLOCKED: "expires_at",
    JobState.CLAIMED: "created_at",
    JobState.FAILED: "created_at",
}


@dataclass(frozen=True, slots=True)
class ListFilter:
    """Every filter given must match. The text filters are substrings, matched literally
    (`%` and `_` are not wildcards); case follows the database's collation."""

    queue_name: str | None = None
    class_name: str | None = None
    argument_text: str | None = None
    error_text: str | None = None  # failed jobs only

    @property
    def active(self) -> bool:
        return any((self.queue_name, self.class_name, self.argument_text, self.error_text))


@dataclass(frozen=True, slots=True)
class ListedJob:
    id: int
    queue_name: str
    class_name: str
    priority: int
    arguments: str | None
    created_at: datetime
    # The moment that matters in this state: ready since, scheduled for, blocked until,
    # claimed at, failed at, finished at.
    at: datetime | None
    concurrency_key: str | None = None
    process_id: int | None = None
    error: dict[str, Any] | None = None
    ending: str | None = None


@dataclass(frozen=True, slots=True)
class JobPage:
    state: JobState
    jobs: list[ListedJob]
    next_before: int | None  # the `before` of the next (older) page; None on the last page


def list_state(
    tx: Tx, *, state: JobState, where: ListFilter | None = None, before: int | None = None, limit: int = 50
) -> JobPage:
    """Jobs in `state` with id < before (all when None), newest first, at most `limit`."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= PAGE_MAX:
        raise ValueError(f"a page holds 1 to {PAGE_MAX} jobs, not {limit!r}")
    where = where or ListFilter()
    stmt, key = _from_state(tx, state)
    jobs = tx.tables.jobs
    if before is not None:
        stmt = stmt.where(key < before)
    if where.queue_name:
        stmt = stmt.where(jobs.c.queue_name == where.queue_name)
    if where.class_name:
        stmt = stmt.where(jobs.c.class_name == where.class_name)
    if where.argument_text:
        stmt = stmt.where(jobs.c.arguments.contains(where.argument_text, autoescape=True))
    if where.error_text:
        if state is not JobState.FAILED:
            raise ValueError(f"the error text filter applies to failed jobs only, not to {state.value} ones")
        stmt = stmt.where(tx.tables.failed_executions.c.error.contains(where.error_text, autoescape=True))
    stmt = stmt.order_by(key.desc()).limit(limit + 1)
    if state is JobState.FINISHED:
        return _finished_page(tx, [r.id for r in tx.conn.execute(stmt)], limit)
    rows = list(tx.conn.execute(stmt))
    listed = [_listed(r) for r in rows[:limit]]
    return JobPage(state, listed, listed[-1].id if len(rows) > limit else None)


def _finished_page(tx: Tx, ids: list[int], limit: int) -> JobPage:
    """The finished page's rows, read by id once the page is known. Joining failed_executions
    in the paging query made PostgreSQL hash-join the whole jobs table (it cannot tell how
    few rows the anti-join keeps); here it is an index probe per row of the page. A row the
    wheel left both finished and failed is failed, so it is dropped from this list."""
    t = tx.tables
    jobs, failed = t.jobs, t.failed_executions
    page = ids[:limit]
    stmt = (
        select(*_columns(t), jobs.c.finished_at.label("at"), failed.c.id.label("f"))
        .outerjoin(failed, failed.c.job_id == jobs.c.id)
        .where(jobs.c.id.in_(page))
    )
    if tx.keeps_results:
        ended = t.job_results
        stmt = stmt.add_columns(ended.c.status.label("ending")).outerjoin(ended, ended.c.job_id == jobs.c.id)
    rows = sorted((r for r in tx.conn.execute(stmt) if r.f is None), key=lambda r: -r.id) if page else []
    return JobPage(JobState.FINISHED, [_listed(r) for r in rows], page[-1] if len(ids) > limit else None)


def _columns(t: Any) -> tuple[Any, ...]:
    jobs = t.jobs
    return (
        jobs.c.id,
        jobs.c.queue_name,
        jobs.c.class_name,
        jobs.c.priority,
        jobs.c.arguments,
        jobs.c.created_at,
        jobs.c.concurrency_key,
    )


def _from_state(tx: Tx, state: JobState) -> tuple[Select[Any], Any]:
    t = tx.tables
    jobs = t.jobs
    base = _columns(t)
    if state is JobState.FINISHED:
        return select(jobs.c.id).where(jobs.c.finished_at.is_not(None)), jobs.c.id
    table = state_tables(t)[state]
    at = table.c[_AT[state]]
    stmt = select(*base, at.label("at")).select_from(table).join(jobs, jobs.c.id == table.c.job_id)
    if state is JobState.CLAIMED:
        stmt = stmt.add_columns(table.c.process_id)
    if state is JobState.FAILED:
        stmt = stmt.add_columns(table.c.error)
    return stmt, table.c.job_id


def _listed(r: Any) -> ListedJob:
    m = r._mapping
    return ListedJob(
        id=r.id,
        queue_name=r.queue_name,
        class_name=r.class_name,
        priority=r.priority,
        arguments=r.arguments,
        created_at=r.created_at,
        at=r.at,
        concurrency_key=r.concurrency_key,
        process_id=m.get("process_id"),
        error=read_error(m["error"]) if m.get("error") else None,
        ending=m.get("ending"),
    )
