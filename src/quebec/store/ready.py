"""ready → claimed."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Select, select

from quebec.store.database import Tx, one_statement_when
from quebec.store.rows import claimed_job
from quebec.store.semaphores import acquire, release
from quebec.store.statements import queue_condition, queue_match, unpaused
from quebec.types import ClaimedJob, QueueSelector


@one_statement_when(
    lambda dialect, _args, kwargs: (
        dialect.supports_modifying_cte
        and not kwargs.get("limited_queues")
        and (kwargs["queues"].is_all or len(kwargs["queues"].patterns) == 1)
    )
)
def claim(
    tx: Tx, *, queues: QueueSelector, limit: int, process_id: int, limited_queues: Collection[str] = ()
) -> list[ClaimedJob]:
    """ready → claimed: up to `limit` jobs, lowest priority number first, queues in selector order.

    Rows other workers hold are skipped (SKIP LOCKED); on SQLite the write lock taken
    by BEGIN IMMEDIATE makes the claim exclusive instead. Paused queues are left alone.
    A queue in `limited_queues` (experimental_queue_concurrency) gives at most as many
    jobs as its `queue:<name>` semaphore has free slots, after the other queues.
    """
    if limit <= 0:
        return []
    out: list[ClaimedJob] = []
    for pattern in [None] if queues.is_all else list(queues.patterns):
        if len(out) >= limit:
            break
        out.extend(_take(tx, pattern, limit - len(out), process_id, limited_queues))
    for queue in sorted(q for q in limited_queues if queues.matches(q)):
        rule = tx.flow.queue_rule(queue)
        room = limit - len(out)
        if rule is None or room <= 0:
            continue
        slots = acquire(tx, key=f"queue:{queue}", wanted=room, rule=rule)
        got = _take(tx, queue, slots, process_id) if slots else []
        if len(got) < slots:  # fewer ready jobs than free slots: give the rest back
            release(tx, key=f"queue:{queue}", count=slots - len(got), rule=rule)
        out.extend(got)
    return out


def _take(tx: Tx, pattern: str | None, limit: int, process_id: int, skip: Collection[str] = ()) -> list[ClaimedJob]:
    """Claim up to `limit` ready jobs of one queue pattern, leaving paused queues and `skip` alone."""
    if skip:  # experimental_queue_concurrency: rare, so built each time
        pick = _pick(tx, pattern, limit, skip)
        return _claim_in_steps(tx, list(tx.conn.scalars(pick)), process_id)
    sql = tx.statements
    match, params = queue_match(pattern)
    params["limit"] = limit
    if tx.dialect.supports_modifying_cte:
        rows = tx.conn.execute(sql.claim_in_one[match], {**params, "process_id": process_id, "now": tx.now})
        return [claimed_job(r) for r in rows]
    take = sql.take_picked.get(match)
    if take is not None:
        return _claimed(tx, list(tx.conn.scalars(take, params)), process_id)
    if not (tx.dialect.supports_skip_locked and tx.dialect.use_skip_locked):
        return _claim_in_steps(tx, list(tx.conn.scalars(sql.pick[match], params)), process_id)
    picked: list[Any] = list(tx.conn.execute(sql.pick_jobs[match], params))
    if not picked:
        return []
    # The pick locked these rows and their jobs (FOR UPDATE SKIP LOCKED): they are ours to
    # delete, by primary key, without looking at rows other claims hold.
    now = tx.dialect.to_db(tx.now)
    tx.dialect.delete_by_id_and_insert(
        tx.conn,
        tx.tables.ready_executions,
        [r.ready_id for r in picked],
        tx.tables.claimed_executions,
        ("job_id", "process_id", "created_at"),
        [(r.id, process_id, now) for r in picked],
    )
    return [claimed_job(r) for r in picked]


def _pick(tx: Tx, pattern: str | None, limit: int, skip: Collection[str]) -> Select[tuple[int]]:
    """The ready rows to take: one queue pattern, paused queues and `skip` left out, locked rows skipped."""
    ready = tx.tables.ready_executions
    stmt = select(ready.c.job_id).where(unpaused(tx.tables), ready.c.queue_name.not_in(list(skip)))
    if pattern is not None:
        stmt = stmt.where(queue_condition(ready.c.queue_name, pattern))
    return tx.dialect.lock_skip_locked(stmt.order_by(ready.c.priority, ready.c.job_id).limit(limit))


def _claim_in_steps(tx: Tx, picked: list[int], process_id: int) -> list[ClaimedJob]:
    """Picked ready rows → claimed, a statement a step (no data-modifying CTEs here)."""
    if not picked:
        return []
    return _claimed(tx, _take_ready(tx, picked), process_id)


def _claimed(tx: Tx, held: list[int], process_id: int) -> list[ClaimedJob]:
    """Claims for jobs whose ready rows this transaction deleted; the jobs, in claim order."""
    if not held:
        return []
    sql = tx.statements
    tx.conn.execute(sql.insert_claims, [{"job_id": j, "process_id": process_id, "created_at": tx.now} for j in held])
    return [claimed_job(r) for r in tx.conn.execute(sql.jobs_by_id, sql.ids(held))]


def _take_ready(tx: Tx, picked: list[int]) -> list[int]:
    """Delete the picked ready rows; those deleted (all of them where the pick locked them)."""
    sql = tx.statements
    return tx.dialect.delete_returning(tx.conn, tx.tables.ready_executions, sql.ready_of_jobs, sql.ids(picked))
