"""Enqueue: ∅ → ready | scheduled | blocked. The only enqueue path; one job is enqueue_many([job])."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from itertools import repeat
from typing import Any

from sqlalchemy import Connection, Table, insert, literal, select
from sqlalchemy.sql.elements import ColumnElement

from quebec.dialects import Dialect
from quebec.errors import ArgumentsTooLarge
from quebec.store import queries, unique
from quebec.store.blocked import free_slots_of
from quebec.store.database import Tx, one_statement_when
from quebec.store.finished import mark_finished
from quebec.store.routing import Routed, announce, due, route
from quebec.types import EnqueuedJobs, JobState, JobStatus, NewJob, NewJobs

_JOB_COLUMNS = (
    "queue_name",
    "class_name",
    "arguments",
    "priority",
    "active_job_id",
    "scheduled_at",
    "concurrency_key",
    "created_at",
    "updated_at",
)
_READY_COLUMNS = ("job_id", "queue_name", "priority", "created_at")
_SCHEDULED_COLUMNS = ("job_id", "queue_name", "priority", "scheduled_at", "created_at")

# From this many jobs on, an enqueue is a bulk one. PostgreSQL streams it with COPY into
# ids drawn ahead (10,000 jobs: 0.14 s against 0.20 for one INSERT … unnest statement,
# which stays the one-round-trip path for small batches). SQLite copies the execution rows
# from the new jobs rows inside the database (one INSERT … SELECT each) instead of binding
# them row by row (10,000 ready rows: 8 ms against 27).
BULK = 64


def _one_statement(dialect: Dialect, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    jobs = args[0] if args else kwargs["jobs"]
    if len(jobs) > dialect.jobs_per_enqueue_statement or (dialect.supports_copy and len(jobs) >= BULK):
        return False
    return not _keyed(jobs if isinstance(jobs, NewJobs) else NewJobs.of(jobs))


def _keyed(batch: NewJobs) -> bool:
    """Does any job of the batch have a concurrency or unique key (so it is routed job by job)?"""
    return batch.unique_keys is not None or any(key is not None for key in batch.concurrency_keys)


@one_statement_when(_one_statement)
def enqueue_many(tx: Tx, jobs: NewJobs | Sequence[NewJob]) -> EnqueuedJobs:
    """∅ → ready (due now), scheduled (due later) or blocked (no concurrency slot free), in a
    few statements for any number of jobs.

    Jobs without a concurrency key take the bulk paths below, which apply routing.due in
    bulk; a batch with keys is inserted, then routed (routing.route) job by job.
    """
    batch = jobs if isinstance(jobs, NewJobs) else NewJobs.of(jobs)
    n = len(batch)
    if not n:
        return EnqueuedJobs([], [], [])
    _check_sizes(tx, batch)
    t, d, now = tx.tables, tx.dialect, tx.now
    db_now = d.to_db(now)
    at = batch.scheduled_at
    if at.count(at[0]) == n:  # the usual batch: one time for all
        later, db_at = [not due(at[0], now)] * n, [d.to_db(at[0])] * n
    else:
        later, db_at = [not due(when, now) for when in at], [d.to_db(when) for when in at]
    keyed = _keyed(batch)
    # In _JOB_COLUMNS order; rows are zipped from them in C.
    columns = (
        batch.queue_names,
        batch.class_names,
        batch.arguments,
        batch.priorities,
        batch.active_job_ids,
        db_at,
        batch.concurrency_keys,
        [db_now] * n,
        [db_now] * n,
    )
    bulk = n >= BULK
    if bulk and d.supports_copy:
        ids = d.reserve_ids(tx.conn, t.jobs, n)
        d.copy_rows(tx.conn, t.jobs, ("id", *_JOB_COLUMNS), zip(ids, *columns, strict=True))
        if keyed:
            return _routed(tx, batch, ids)
        _add_executions(tx, batch, ids, later, db_at, db_now, d.copy_rows)
        return EnqueuedJobs(ids, batch.active_job_ids, _states(later))
    rows = list(zip(*columns, strict=True))
    done = None
    if n <= d.jobs_per_enqueue_statement and not keyed:
        channel = tx.channel if d.supports_listen else None
        done = d.enqueue_in_one_statement(
            tx.conn, t.jobs, t.ready_executions, t.scheduled_executions, _JOB_COLUMNS, rows, now=db_now, channel=channel
        )
    if done is not None:
        ids, later = [job_id for job_id, _ in done], [wait for _, wait in done]
    else:
        ids = d.insert_returning_ids(tx.conn, t.jobs, _JOB_COLUMNS, rows, key="active_job_id")
        if keyed:
            return _routed(tx, batch, ids)
        if bulk and d.single_writer:
            _executions_from_jobs(tx, batch, ids, later)
        else:
            _add_executions(tx, batch, ids, later, db_at, db_now, d.insert_rows)
    return EnqueuedJobs(ids, batch.active_job_ids, _states(later))


def _states(later: list[bool]) -> list[JobState]:
    ready, scheduled = JobState.READY, JobState.SCHEDULED
    return [scheduled if wait else ready for wait in later]


def _routed(tx: Tx, batch: NewJobs, ids: list[int]) -> EnqueuedJobs:
    """Execution rows for jobs just inserted, through the one routing step (concurrency
    keys); a duplicate of a unique job is removed again and answered with the job it duplicates."""
    holders: dict[int, int] = {}
    if batch.unique_keys is not None and batch.unique_until is not None:
        holders = unique.take(tx, job_ids=ids, keys=batch.unique_keys, until=batch.unique_until)
        unique.drop_duplicates(tx, list(holders))
    jobs = [
        Routed(job_id, queue, priority, at, key)
        for job_id, queue, priority, at, key in zip(
            ids, batch.queue_names, batch.priorities, batch.scheduled_at, batch.concurrency_keys, strict=True
        )
        if job_id not in holders
    ]
    states = dict(zip([j.job_id for j in jobs], route(tx, jobs), strict=True))
    out = EnqueuedJobs([], [], [])
    for new_id, new_active_job_id in zip(ids, batch.active_job_ids, strict=True):
        held = queries.get_job(tx, job_id=holders[new_id]) if new_id in holders else None
        out.ids.append(holders.get(new_id, new_id))
        out.active_job_ids.append((held.active_job_id if held else None) or new_active_job_id)
        out.states.append(held.state if held else states.get(new_id, JobState.FINISHED))
    return out


def _check_sizes(tx: Tx, batch: NewJobs) -> None:
    """Refuse arguments the database cannot store, in one sentence, before any statement
    (else: a raw DataError, or on MySQL retries until "server has gone away")."""
    limit = tx.dialect.arguments_limit
    if limit is None:
        return
    most, why = limit
    # UTF-8 takes at most 4 bytes a character: only a long text needs its bytes counted.
    try:
        longest = max(map(len, batch.arguments))  # in C: 10,000 jobs cost 0.1 ms
    except TypeError:  # a job without arguments (None)
        longest = max(len(a) for a in batch.arguments if a is not None) if any(batch.arguments) else 0
    if longest * 4 <= most:
        return
    for class_name, arguments in zip(batch.class_names, batch.arguments, strict=True):
        if arguments and len(arguments) * 4 > most and (size := len(arguments.encode())) > most:
            raise ArgumentsTooLarge(
                f"the arguments of {class_name} take {size:,} bytes as JSON, more than {why} allows "
                f"({most:,} bytes); pass a reference to large data (an id, a path, a URL) instead of the data itself"
            )


def _add_executions(
    tx: Tx,
    batch: NewJobs,
    ids: list[int],
    later: list[bool],
    db_at: list[Any],
    db_now: Any,
    add: Callable[[Connection, Table, Sequence[str], Sequence[Sequence[Any]]], None],
) -> None:
    """Ready and scheduled rows for jobs just inserted with ids `ids`, sent row by row."""
    t = tx.tables
    ready: list[tuple[Any, ...]]
    scheduled: list[tuple[Any, ...]] = []
    if not any(later):
        ready = list(zip(ids, batch.queue_names, batch.priorities, repeat(db_now)))
    else:
        both = list(zip(ids, batch.queue_names, batch.priorities, db_at, later, strict=True))
        ready = [(i, q, p, db_now) for i, q, p, _, wait in both if not wait]
        scheduled = [(i, q, p, a, db_now) for i, q, p, a, wait in both if wait]
    if ready:
        add(tx.conn, t.ready_executions, _READY_COLUMNS, ready)
        announce(tx, _due_queues(batch, later))
    if scheduled:
        add(tx.conn, t.scheduled_executions, _SCHEDULED_COLUMNS, scheduled)


def _executions_from_jobs(tx: Tx, batch: NewJobs, ids: list[int], later: list[bool]) -> None:
    """Ready and scheduled rows for jobs just inserted with ids `ids`, a consecutive range
    (one writer at a time, as insert_returning_ids says), copied inside the database."""
    t, now = tx.tables, tx.now
    new_jobs = t.jobs.c.id.between(ids[0], ids[-1])
    due_now = t.jobs.c.scheduled_at <= now  # routing.due, in SQL
    created = literal(now, t.jobs.c.created_at.type)
    if not all(later):
        _copy(
            tx,
            t.ready_executions,
            _READY_COLUMNS,
            (t.jobs.c.id, t.jobs.c.queue_name, t.jobs.c.priority, created),
            new_jobs & due_now,
        )
        announce(tx, _due_queues(batch, later))
    if any(later):
        _copy(
            tx,
            t.scheduled_executions,
            _SCHEDULED_COLUMNS,
            (t.jobs.c.id, t.jobs.c.queue_name, t.jobs.c.priority, t.jobs.c.scheduled_at, created),
            new_jobs & ~due_now,
        )


def _copy(tx: Tx, table: Table, columns: Sequence[str], values: Sequence[Any], where: ColumnElement[bool]) -> None:
    tx.conn.execute(insert(table).from_select(list(columns), select(*values).where(where)))


def _due_queues(batch: NewJobs, later: list[bool]) -> Iterator[str]:
    """The queues of the batch's jobs that went to ready (lazy: read only where announced)."""
    return (queue for queue, wait in zip(batch.queue_names, later, strict=True) if not wait)


def cancel(tx: Tx, *, job_ids: Sequence[int]) -> list[int]:
    """ready | scheduled | blocked → finished: jobs that have not started will not run.

    A job already claimed (running) or failed is left alone and not returned.
    """
    t = tx.tables
    ids = list(job_ids)
    gone: list[int] = []
    for table in (t.ready_executions, t.scheduled_executions, t.blocked_executions):
        held = tx.dialect.delete_returning(tx.conn, table, table.c.job_id.in_(ids))
        if table is t.ready_executions:
            free_slots_of(tx, held)  # a ready job holds its concurrency slot
        gone.extend(held)
    mark_finished(tx, gone, status=JobStatus.CANCELLED)
    return sorted(gone)
