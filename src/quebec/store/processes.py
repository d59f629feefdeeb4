"""Process rows: register, heartbeat, deregister, and pruning the dead."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, or_, select, update

from quebec.store import batch_completion
from quebec.store.blocked import free_queue_slots_of, free_slots_of
from quebec.store.database import Tx
from quebec.store.error_record import error_json
from quebec.store.results import announce_done
from quebec.store.routing import to_ready
from quebec.types import ErrorInfo, ProcessInfo, Pruned

PRUNED_ERROR = ErrorInfo("ProcessPrunedError", "Process crashed or was killed before job completion")


def register(tx: Tx, *, info: ProcessInfo) -> int:
    result = tx.conn.execute(
        insert(tx.tables.processes).values(
            kind=info.kind,
            name=info.name,
            pid=info.pid,
            hostname=info.hostname,
            metadata=info.metadata,
            supervisor_id=info.supervisor_id,
            last_heartbeat_at=tx.now,
            created_at=tx.now,
        )
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def heartbeat_many(tx: Tx, *, process_ids: Sequence[int], metadata: dict[int, str] | None = None) -> list[int]:
    """Refresh heartbeats in one statement; return the ids no longer registered (we were pruned)."""
    procs = tx.tables.processes
    if not process_ids:
        return []
    tx.conn.execute(update(procs).where(procs.c.id.in_(list(process_ids))).values(last_heartbeat_at=tx.now))
    for pid, meta in (metadata or {}).items():
        tx.conn.execute(update(procs).where(procs.c.id == pid).values(metadata=meta))
    present = set(tx.conn.scalars(select(procs.c.id).where(procs.c.id.in_(list(process_ids)))))
    return [p for p in process_ids if p not in present]


def deregister(tx: Tx, *, process_id: int) -> None:
    procs = tx.tables.processes
    tx.conn.execute(delete(procs).where(procs.c.id == process_id))


def children(tx: Tx, *, supervisor_id: int | None, pid: int) -> list[int]:
    """The process rows a fork supervisor's child with this pid registered."""
    procs = tx.tables.processes
    if supervisor_id is None:
        return []
    return list(tx.conn.scalars(select(procs.c.id).where(procs.c.supervisor_id == supervisor_id, procs.c.pid == pid)))


def on_host(tx: Tx, *, hostname: str) -> list[dict[str, Any]]:
    """Processes registered from this host, for the pid liveness check."""
    procs = tx.tables.processes
    rows = tx.conn.execute(select(procs.c.id, procs.c.pid, procs.c.metadata).where(procs.c.hostname == hostname))
    return [{"id": r.id, "pid": r.pid, "metadata": json.loads(r.metadata) if r.metadata else {}} for r in rows]


def prune_dead(
    tx: Tx,
    *,
    stale_before: datetime,
    dead_ids: Collection[int] = (),
    at_most_once: Collection[str] = (),
    failing: Collection[int] = (),
    failing_error: ErrorInfo | None = None,
) -> Pruned:
    """Remove dead processes; their claims go back to ready (they run again) or, for
    classes that opted out of re-running (`at_most_once`), to failed with ProcessPrunedError.
    Claims of jobs in `failing` (what an OOM-killed worker was running) fail with
    `failing_error` instead, whatever their class.

    A process is dead when its heartbeat is older than `stale_before` or when it is in
    `dead_ids` (its pid vanished on this host). Claims whose process row is gone are
    orphans and are treated the same way. Two pruners racing skip each other's rows.
    """
    t = tx.tables
    procs, claims, jobs = t.processes, t.claimed_executions, t.jobs
    cond = procs.c.last_heartbeat_at < stale_before
    if dead_ids:
        cond = or_(cond, procs.c.id.in_(list(dead_ids)))
    victims = list(tx.conn.scalars(tx.dialect.lock_skip_locked(select(procs.c.id).where(cond))))
    orphan = claims.c.process_id.is_(None) | claims.c.process_id.not_in(select(procs.c.id).scalar_subquery())
    claim_cond = or_(claims.c.process_id.in_(victims), orphan) if victims else orphan
    rows = tx.conn.execute(
        tx.dialect.lock_skip_locked(
            select(claims.c.job_id, jobs.c.class_name).join(jobs, jobs.c.id == claims.c.job_id).where(claim_cond)
        )
    ).all()
    job_ids = [r.job_id for r in rows]
    if job_ids:
        tx.conn.execute(delete(claims).where(claims.c.job_id.in_(job_ids)))
    failing = set(failing) if failing_error is not None else set()
    to_fail = [r.job_id for r in rows if r.class_name in at_most_once or r.job_id in failing]
    to_release = [r.job_id for r in rows if r.class_name not in at_most_once and r.job_id not in failing]
    # Jobs that run again keep the concurrency slot they held; failed ones give it back.
    free_queue_slots_of(tx, to_release)
    to_ready(tx, to_release, holding=True)
    free_slots_of(tx, to_fail)
    if to_fail:
        tx.conn.execute(
            insert(t.failed_executions),
            [
                {
                    "job_id": j,
                    "error": error_json(failing_error if failing_error is not None and j in failing else PRUNED_ERROR),
                    "created_at": tx.now,
                }
                for j in to_fail
            ],
        )
        announce_done(tx)
        batch_completion.settle_ended(tx, to_fail)  # batch members among them end for their batch now
    if victims:
        tx.conn.execute(delete(procs).where(procs.c.id.in_(victims)))
    return Pruned(process_ids=tuple(victims), released=tuple(to_release), failed=tuple(to_fail))
