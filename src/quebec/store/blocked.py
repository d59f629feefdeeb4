"""blocked → ready (a slot freed, by hand, or the key's semaphore expired) or → deleted (cancel)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Row, delete, insert, select

from quebec.store.database import Tx
from quebec.store.routing import announce
from quebec.store.semaphores import acquire, release, rule_of


def free_slots_of(tx: Tx, job_ids: Sequence[int]) -> None:
    """Give back the slots these jobs held (they just finished, failed, were discarded or
    retried) and move the next blocked job of each key into each slot freed: part of the
    transaction that records the outcome, so a slot is never free with jobs still blocked.

    Skipped where no job class of this process has a concurrency limit: the one select
    would cost every flush of successes a round trip. Call it before the job rows go
    (preserve_finished_jobs off deletes them).
    """
    if not job_ids or not tx.flow.limited:
        return
    jobs = tx.tables.jobs
    rows = tx.conn.execute(select(jobs.c.concurrency_key, jobs.c.queue_name).where(jobs.c.id.in_(list(job_ids)))).all()
    freed = Counter(r.concurrency_key for r in rows if r.concurrency_key is not None)
    if freed:
        release_next(tx, freed=freed)
    _give_back_queue_slots(tx, [r.queue_name for r in rows])


def free_queue_slots_of(tx: Tx, job_ids: Sequence[int]) -> None:
    """Give back the queue slots (experimental_queue_concurrency) of claims handed back to
    ready: a queue slot is taken at claim time, so a job that runs again takes one again."""
    if not job_ids or not tx.flow.limited:
        return
    jobs = tx.tables.jobs
    _give_back_queue_slots(tx, list(tx.conn.scalars(select(jobs.c.queue_name).where(jobs.c.id.in_(list(job_ids))))))


def _give_back_queue_slots(tx: Tx, queue_names: Sequence[str]) -> None:
    for queue, count in sorted(Counter(queue_names).items()):
        rule = tx.flow.queue_rule(queue)
        if rule is not None:
            release(tx, key=f"queue:{queue}", count=count, rule=rule)


def release_next(tx: Tx, *, freed: Mapping[str, int]) -> list[int]:
    """Give `freed[key]` slots back to each key, moving up to that many blocked jobs of the
    key (priority, then id) to ready into them; returns the jobs moved.

    A slot passes straight from the job that freed it to the blocked job that takes it, so
    a key costs two statements (the waiting jobs, the semaphore's count and expiry) and
    the moves of all keys one delete and one insert. A key whose semaphore has expired
    away takes its slots afresh. Blocked rows another transaction is moving are skipped
    (SKIP LOCKED): that transaction takes the slot instead.
    """
    moving: list[Row[Any, Any, Any]] = []
    for key in sorted(freed):
        rule = rule_of(tx, key)
        waiting = _waiting(tx, key, freed[key])
        if release(tx, key=key, count=freed[key] - len(waiting), rule=rule):
            moving += waiting
        else:
            moving += waiting[: acquire(tx, key=key, wanted=len(waiting), rule=rule)]
    return _to_ready(tx, moving)


def _waiting(tx: Tx, key: str, at_most: int) -> list[Row[Any, Any, Any]]:
    """The next `at_most` blocked jobs of `key`, locked; rows others hold are skipped."""
    blocked = tx.tables.blocked_executions
    return list(
        tx.conn.execute(
            tx.dialect.lock_skip_locked(
                select(blocked.c.job_id, blocked.c.queue_name, blocked.c.priority)
                .where(blocked.c.concurrency_key == key)
                .order_by(blocked.c.priority, blocked.c.job_id)
                .limit(at_most)
            )
        ).all()
    )


def _promote(tx: Tx, key: str, at_most: int) -> list[int]:
    """Move up to `at_most` blocked jobs of `key` to ready, as far as slots are free."""
    rows = _waiting(tx, key, at_most)
    if not rows:
        return []
    taken = acquire(tx, key=key, wanted=len(rows), rule=rule_of(tx, key))
    return _to_ready(tx, rows[:taken])


def _to_ready(tx: Tx, rows: Sequence[Row[Any, Any, Any]]) -> list[int]:
    """Blocked rows (job_id, queue_name, priority) → ready rows, in one delete and one insert."""
    if not rows:
        return []
    blocked, ready = tx.tables.blocked_executions, tx.tables.ready_executions
    ids = [r.job_id for r in rows]
    tx.conn.execute(delete(blocked).where(blocked.c.job_id.in_(ids)))
    tx.conn.execute(
        insert(ready),
        [{"job_id": r.job_id, "queue_name": r.queue_name, "priority": r.priority, "created_at": tx.now} for r in rows],
    )
    announce(tx, {r.queue_name for r in rows})
    return ids


def unblock(tx: Tx, *, job_ids: Sequence[int]) -> list[int]:
    """blocked → ready now, without waiting for a slot (the operator says so); returns those moved."""
    blocked = tx.tables.blocked_executions
    rows = tx.conn.execute(
        select(blocked.c.job_id, blocked.c.queue_name, blocked.c.priority)
        .where(blocked.c.job_id.in_(list(job_ids)))
        .with_for_update()
    ).all()
    return _to_ready(tx, rows)


def blocked_ids(tx: Tx, *, class_name: str | None = None, queue_name: str | None = None, limit: int) -> list[int]:
    """Up to `limit` blocked job ids (oldest first), of one class and/or queue when given."""
    blocked, jobs = tx.tables.blocked_executions, tx.tables.jobs
    stmt = select(blocked.c.job_id).order_by(blocked.c.job_id).limit(limit)
    if queue_name is not None:
        stmt = stmt.where(blocked.c.queue_name == queue_name)
    if class_name is not None:
        stmt = stmt.join(jobs, jobs.c.id == blocked.c.job_id).where(jobs.c.class_name == class_name)
    return list(tx.conn.scalars(stmt))


def cancel_blocked(tx: Tx, *, job_ids: Sequence[int]) -> list[int]:
    """blocked → deleted: the job row goes with its blocked row, as the wheel does."""
    blocked, jobs = tx.tables.blocked_executions, tx.tables.jobs
    held = tx.dialect.delete_returning(tx.conn, blocked, blocked.c.job_id.in_(list(job_ids)))
    if held:
        tx.conn.execute(delete(jobs).where(jobs.c.id.in_(held)))
    return sorted(held)


def unblock_expired(tx: Tx, *, limit: int) -> list[int]:
    """Concurrency maintenance: for keys with blocked jobs whose wait has expired, move as
    many as have free slots now (their semaphore expired and was deleted, or slots are
    free and no release came); returns the jobs moved."""
    blocked = tx.tables.blocked_executions
    keys = list(
        tx.conn.scalars(
            select(blocked.c.concurrency_key)
            .distinct()
            .where(blocked.c.expires_at < tx.now)
            .order_by(blocked.c.concurrency_key)
            .limit(limit)
        )
    )
    moved: list[int] = []
    for key in keys:
        moved += _promote(tx, key, rule_of(tx, key).limit)
    return moved
