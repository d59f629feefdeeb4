"""Batch jobs reaching an end, in the transaction of their outcome; batches finishing once.

A job's batch_executions row goes in the transaction that finishes, discards, fails or
retries it (a retry hands the row to the next attempt, so a retried job counts once). A
batch finishes when it was started and no row is left: one conditional UPDATE of its row
(`finished_at IS NULL`) decides which transaction does it, and that one writes the final
counters and enqueues the on_success / on_failure and on_finish callback jobs. The rows
of the touched batches are locked first (in id order), so two flushes finishing a batch's
last two jobs cannot both miss the end.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, exists, or_, select, update

from quebec.arguments import format_naive_utc
from quebec.batch_context import CALLBACK_KEY
from quebec.job_ids import new_active_job_id
from quebec.store import claimed
from quebec.store.batches import live_counts, track
from quebec.store.database import Tx
from quebec.store.jobs import enqueue_many
from quebec.store.results import Ending
from quebec.types import Finished, NewJob

log = logging.getLogger("quebec.batches")


# -- the completer's transitions, for flushes holding batch jobs ---------------------------
def finish_many(
    tx: Tx,
    *,
    members: Mapping[int, int],
    process_id: int,
    job_ids: Sequence[int],
    preserve: bool | None = None,
    endings: Mapping[int, Ending] | None = None,
) -> Finished:
    """claimed.finish_many, and the batch jobs among them (`members`: job → batch) completed."""
    done = claimed.finish_many(tx, process_id=process_id, job_ids=job_ids, preserve=preserve, endings=endings)
    settle(tx, {j: members[j] for j in done.job_ids if j in members})
    return done


def fail_many(tx: Tx, *, members: Mapping[int, int], process_id: int, failures: Sequence[claimed.Failure]) -> list[int]:
    """claimed.fail_many, and the batch jobs among them failed for their batch."""
    held = claimed.fail_many(tx, process_id=process_id, failures=failures)
    settle(tx, {j: members[j] for j in held if j in members})
    return held


def retry_many(
    tx: Tx,
    *,
    members: Mapping[int, int],
    process_id: int,
    next_runs: Mapping[int, NewJob],
    preserve: bool | None = None,
) -> dict[int, int]:
    """claimed.retry_many, each next attempt of a batch job taking its place in the batch."""
    moved = claimed.retry_many(tx, process_id=process_id, next_runs=next_runs, preserve=preserve)
    hand_over(tx, {old: new for old, new in moved.items() if old in members}, members)
    return moved


# -- the steps ---------------------------------------------------------------------------
def settle(tx: Tx, members: Mapping[int, int]) -> int:
    """These batch jobs (job → batch) ended: drop their rows, finish their batches if that
    was the last. Returns how many batches finished."""
    if not members:
        return 0
    batch_ids = sorted(set(members.values()))
    _lock(tx, batch_ids)
    be = tx.tables.batch_executions
    tx.conn.execute(delete(be).where(be.c.job_id.in_(sorted(members))))
    return finish_ready(tx, batch_ids)


def settle_ended(tx: Tx, job_ids: Sequence[int]) -> int:
    """Jobs that ended outside the completer (failed by pruning): settle the batch members
    among them (one read of batch_executions; nothing more when none is a member)."""
    be = tx.tables.batch_executions
    found = tx.conn.execute(select(be.c.job_id, be.c.batch_id).where(be.c.job_id.in_(list(job_ids))))
    return settle(tx, {int(job_id): int(batch_id) for job_id, batch_id in found})


def hand_over(tx: Tx, moves: Mapping[int, int], members: Mapping[int, int]) -> None:
    """Retries: each new attempt (moves: old → new job) joins its old job's batch in its place."""
    if not moves:
        return
    by_batch: dict[int, list[int]] = {}
    for old, new in moves.items():
        by_batch.setdefault(members[old], []).append(new)
    running = _lock(tx, sorted(by_batch))
    be = tx.tables.batch_executions
    tx.conn.execute(delete(be).where(be.c.job_id.in_(sorted(moves))))
    for batch_id, new_ids in sorted(by_batch.items()):
        if batch_id in running:  # a member an operator retried out of a finished (or cleared) batch stays out
            track(tx, batch_id, new_ids)


def start(tx: Tx, batch_id: int) -> bool:
    """pending → enqueued (the `with` block was left); finished at once when nothing is
    outstanding (an empty batch, or its jobs all ran already). True when it finished."""
    t = tx.tables.batches
    tx.conn.execute(
        update(t).where(t.c.id == batch_id, t.c.enqueued_at.is_(None)).values(enqueued_at=tx.now, updated_at=tx.now)
    )
    return finish_ready(tx, [batch_id]) > 0


def finish_ready(tx: Tx, batch_ids: Iterable[int]) -> int:
    """Finish each started batch with nothing outstanding, once: the UPDATE guarded by
    `finished_at IS NULL` is the decision. Returns how many this transaction finished."""
    t, be = tx.tables.batches, tx.tables.batch_executions
    finished = 0
    for batch_id in batch_ids:
        won = tx.conn.execute(
            update(t)
            .where(
                t.c.id == batch_id,
                t.c.enqueued_at.is_not(None),
                t.c.finished_at.is_(None),
                ~exists().where(be.c.batch_id == batch_id),
            )
            .values(finished_at=tx.now, updated_at=tx.now)
        )
        if won.rowcount != 1:
            continue
        finished += 1
        row = tx.conn.execute(
            select(t.c.total_jobs, t.c.on_finish, t.c.on_success, t.c.on_failure).where(t.c.id == batch_id)
        ).one()
        _, failed = live_counts(tx, batch_id)
        tx.conn.execute(
            update(t)
            .where(t.c.id == batch_id)
            .values(
                completed_jobs=max(int(row.total_jobs) - failed, 0),
                failed_jobs=failed,
                failed_at=tx.now if failed else None,
            )
        )
        outcome = row.on_failure if failed else row.on_success
        callbacks = [c for c in (_callback(outcome, batch_id, tx.now), _callback(row.on_finish, batch_id, tx.now)) if c]
        if callbacks:
            enqueue_many(tx, callbacks)
    return finished


def sweep(tx: Tx, *, stalled_before: datetime, batch_size: int) -> dict[str, int]:
    """Repair stalled batches: drop rows of jobs that ended without their batch hearing of
    it (pruned, failed by an operator, written by another writer), finish started batches
    with nothing outstanding, start batches pending since before `stalled_before`."""
    t, be, jobs, fe = tx.tables.batches, tx.tables.batch_executions, tx.tables.jobs, tx.tables.failed_executions
    ended = or_(jobs.c.id.is_(None), jobs.c.finished_at.is_not(None), exists().where(fe.c.job_id == be.c.job_id))
    found = tx.conn.execute(
        select(be.c.job_id, be.c.batch_id)
        .select_from(be.outerjoin(jobs, jobs.c.id == be.c.job_id))
        .where(ended)
        .order_by(be.c.job_id)
        .limit(batch_size)
    )
    stale = {int(job_id): int(batch_id) for job_id, batch_id in found}
    finished = settle(tx, stale)
    idle = list(
        tx.conn.scalars(
            select(t.c.id)
            .where(t.c.enqueued_at.is_not(None), t.c.finished_at.is_(None), ~exists().where(be.c.batch_id == t.c.id))
            .order_by(t.c.id)
            .limit(batch_size)
        )
    )
    if idle:
        _lock(tx, idle)
        finished += finish_ready(tx, idle)
    stalled = list(
        tx.conn.scalars(
            select(t.c.id)
            .where(t.c.enqueued_at.is_(None), t.c.finished_at.is_(None), t.c.created_at < stalled_before)
            .order_by(t.c.id)
            .limit(batch_size)
        )
    )
    for batch_id in stalled:
        finished += start(tx, batch_id)
    return {"stale_executions": len(stale), "finished_batches": finished, "started_batches": len(stalled)}


def _lock(tx: Tx, batch_ids: Sequence[int]) -> set[int]:
    """Lock these batches' rows (in id order, so two flushes never wait on each other in a
    circle); returns those not finished."""
    t = tx.tables.batches
    stmt = select(t.c.id, t.c.finished_at).where(t.c.id.in_(list(batch_ids))).order_by(t.c.id).with_for_update()
    return {int(batch_id) for batch_id, finished_at in tx.conn.execute(stmt) if finished_at is None}


def _callback(descriptor: str | None, batch_id: int, now: datetime) -> NewJob | None:
    """The callback job a stored descriptor names, its envelope marked with the batch; None
    (logged) when the descriptor cannot be read: the batch still finishes."""
    if not descriptor:
        return None
    try:
        d = json.loads(descriptor)
        class_name = d["job_class"]
        if not isinstance(class_name, str) or not class_name:
            raise ValueError(f"job_class is {class_name!r}")
        arguments = d.get("arguments") or []
        if not isinstance(arguments, list):
            raise ValueError(f"arguments is a {type(arguments).__name__}, not a list")
        queue = d.get("queue_name") or "default"
        priority = int(d.get("priority") or 0)
        at = _instant(d.get("scheduled_at")) or now
    except (ValueError, TypeError, KeyError) as exc:
        log.error("batch.bad_callback batch_id=%s: %s; the batch finishes without this callback", batch_id, exc)
        return None
    active_job_id = new_active_job_id()
    envelope: dict[str, Any] = {
        "arguments": {
            "arguments": arguments,
            "continuation": {},
            "job_class": class_name,
            "job_id": active_job_id,
            "priority": priority,
            "queue_name": queue,
            "resumptions": 0,
        },
        CALLBACK_KEY: batch_id,
        "enqueued_at": format_naive_utc(now),
        "exception_executions": {},
        "executions": 0,
        "job_class": class_name,
        "job_id": active_job_id,
        "locale": "en",
        "priority": priority,
        "provider_job_id": active_job_id,
        "queue_name": queue,
        "scheduled_at": None,
        "timezone": "UTC",
    }
    text = json.dumps(envelope, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return NewJob(queue, class_name, text, priority, active_job_id, max(at, now))


def _instant(value: Any) -> datetime | None:
    """A descriptor's scheduled_at ("2026-12-04T18:05:19.138724261Z", nanoseconds) as naive UTC."""
    if not value:
        return None
    text = str(value).rstrip("Z")
    head, dot, fraction = text.partition(".")
    parsed = datetime.fromisoformat(head + (dot + fraction[:6] if dot else ""))
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed
