"""The one answer to "where does this job go now?": scheduled, ready, blocked (or finished).

Every path that gives a job an execution row again goes through `route`: enqueue of a
job with a concurrency key (the unconstrained bulk paths in jobs.py apply the same
`due` rule in bulk), dispatch of due jobs, retry_failed, release at shutdown, pruning
of a dead process, unblocking. The rule:

- not due yet (`due` says no)                 → scheduled
- due, no concurrency key, or already holding → ready
- due, a slot of its key free                 → ready, the slot taken
- due, no slot free                           → blocked (expires_at = now + duration),
                                                or finished when its class discards on conflict
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import insert, select

from quebec.store.database import Tx
from quebec.store.finished import mark_finished
from quebec.store.semaphores import acquire, rule_of
from quebec.types import JobState


class Routed(NamedTuple):
    """A job without an execution row, about to get one. scheduled_at None: due now."""

    job_id: int
    queue_name: str
    priority: int
    scheduled_at: datetime | None
    concurrency_key: str | None


def due(at: datetime | None, now: datetime) -> bool:
    """The scheduling rule, the one place it is written (PostgreSQL's one-statement
    enqueue says the same in SQL: `scheduled_at <= now`)."""
    return at is None or at <= now


def route(tx: Tx, jobs: Sequence[Routed], *, holding: bool = False) -> list[JobState]:
    """Give each job its execution row; returns the state each went to, in input order.

    `holding`: the jobs keep a slot they already hold (a claim handed back, a claim of
    a dead process) or skip their limit on purpose (unblock): due means ready.
    Keys are taken in sorted order, so two routing transactions never wait on each other
    in a cycle.
    """
    states = [JobState.READY] * len(jobs)
    by_key: dict[str, list[int]] = {}
    for i, job in enumerate(jobs):
        if not due(job.scheduled_at, tx.now):
            states[i] = JobState.SCHEDULED
        elif job.concurrency_key is not None and not holding:
            by_key.setdefault(job.concurrency_key, []).append(i)
    discarded: list[int] = []
    for key in sorted(by_key):
        waiting = by_key[key]
        rule = rule_of(tx, key)
        taken = acquire(tx, key=key, wanted=len(waiting), rule=rule)
        for i in waiting[taken:]:
            states[i] = JobState.FINISHED if rule.discard else JobState.BLOCKED
            if rule.discard:
                discarded.append(jobs[i].job_id)
    _write(tx, jobs, states)
    mark_finished(tx, discarded)
    return states


def _write(tx: Tx, jobs: Sequence[Routed], states: list[JobState]) -> None:
    t, now = tx.tables, tx.now
    ready = [
        {"job_id": j.job_id, "queue_name": j.queue_name, "priority": j.priority, "created_at": now}
        for j, s in zip(jobs, states, strict=True)
        if s is JobState.READY
    ]
    scheduled = [
        {
            "job_id": j.job_id,
            "queue_name": j.queue_name,
            "priority": j.priority,
            "scheduled_at": j.scheduled_at,
            "created_at": now,
        }
        for j, s in zip(jobs, states, strict=True)
        if s is JobState.SCHEDULED
    ]
    blocked = [
        {
            "job_id": j.job_id,
            "queue_name": j.queue_name,
            "priority": j.priority,
            "concurrency_key": j.concurrency_key,
            "expires_at": now + rule_of(tx, j.concurrency_key).duration,
            "created_at": now,
        }
        for j, s in zip(jobs, states, strict=True)
        if s is JobState.BLOCKED and j.concurrency_key is not None
    ]
    if ready:
        tx.conn.execute(insert(t.ready_executions), ready)
        announce(tx, {j.queue_name for j, s in zip(jobs, states, strict=True) if s is JobState.READY})
    if scheduled:
        tx.conn.execute(insert(t.scheduled_executions), scheduled)
    if blocked:
        tx.conn.execute(insert(t.blocked_executions), blocked)


def from_jobs(tx: Tx, job_ids: Sequence[int]) -> list[Routed]:
    """The jobs rows of `job_ids` as due-now Routed values (in id order)."""
    if not job_ids:
        return []
    jobs = tx.tables.jobs
    rows = tx.conn.execute(
        select(jobs.c.id, jobs.c.queue_name, jobs.c.priority, jobs.c.concurrency_key)
        .where(jobs.c.id.in_(list(job_ids)))
        .order_by(jobs.c.id)
    )
    return [Routed(r.id, r.queue_name, r.priority, None, r.concurrency_key) for r in rows]


def to_ready(tx: Tx, job_ids: Sequence[int], *, holding: bool) -> list[JobState]:
    """Route jobs that have no execution row and are due now (see route)."""
    return route(tx, from_jobs(tx, job_ids), holding=holding)


def announce(tx: Tx, queues: Iterable[str]) -> None:
    """Tell listening workers in other processes that these queues have ready jobs."""
    if tx.dialect.supports_listen:
        for queue in sorted(set(queues)):
            tx.dialect.notify(tx.conn, tx.channel, queue)
