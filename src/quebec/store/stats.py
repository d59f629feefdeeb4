"""Read models for `queues list`, `stats` and `processes list`: counts per queue and state,
the oldest ready job, and the registered processes with what each is running.

Each function is one read transaction, a handful of GROUP BY statements (one per
execution table), never a row per job; `as_of` is the transaction's `now`, so ages are
measured on the clock that wrote the rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, null, select

from quebec.store.database import Tx
from quebec.types import ENDINGS, JobState, JobStatus


@dataclass(frozen=True, slots=True)
class QueueStats:
    name: str
    counts: dict[JobState, int]
    paused: bool = False
    oldest_ready_at: datetime | None = None  # when the longest-waiting ready job became ready
    # The finished jobs split by how they ended (job_results; without a row there: finished).
    endings: dict[JobStatus, int] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Jobs waiting to be claimed (ready)."""
        return self.counts.get(JobState.READY, 0)


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    as_of: datetime
    queues: list[QueueStats]
    with_finished: bool = True

    def totals(self) -> dict[JobState, int]:
        states = [s for s in JobState if self.with_finished or s is not JobState.FINISHED]
        return {s: sum(q.counts.get(s, 0) for q in self.queues) for s in states}

    def endings(self) -> dict[JobStatus, int]:
        return {e: sum(q.endings.get(e, 0) for q in self.queues) for e in ENDINGS if self.with_finished}

    def oldest_ready_at(self) -> datetime | None:
        return min((q.oldest_ready_at for q in self.queues if q.oldest_ready_at is not None), default=None)


@dataclass(frozen=True, slots=True)
class ProcessRow:
    id: int
    kind: str
    name: str
    hostname: str | None
    pid: int
    supervisor_id: int | None
    last_heartbeat_at: datetime
    created_at: datetime
    metadata: dict[str, Any] = field(default_factory=dict)
    running: int = 0  # claimed_executions held by this process


@dataclass(frozen=True, slots=True)
class ProcessSnapshot:
    as_of: datetime
    processes: list[ProcessRow]


def queue_stats(tx: Tx, *, with_finished: bool = True) -> QueueSnapshot:
    """Every queue that has a job in some state, or a pause, with its counts per state.

    with_finished=False skips the finished count, the one statement that reads the jobs
    table itself (all the others read the small execution tables).
    """
    t = tx.tables
    counts: dict[str, dict[JobState, int]] = {}
    oldest: dict[str, datetime] = {}
    ready = t.ready_executions
    for name, n, first in tx.conn.execute(
        select(ready.c.queue_name, func.count(), func.min(ready.c.created_at)).group_by(ready.c.queue_name)
    ):
        counts.setdefault(name, {})[JobState.READY] = int(n)
        oldest[name] = first
    for state, table in ((JobState.SCHEDULED, t.scheduled_executions), (JobState.BLOCKED, t.blocked_executions)):
        for name, n in tx.conn.execute(select(table.c.queue_name, func.count()).group_by(table.c.queue_name)):
            counts.setdefault(name, {})[state] = int(n)
    jobs = t.jobs
    for state, table in ((JobState.CLAIMED, t.claimed_executions), (JobState.FAILED, t.failed_executions)):
        stmt = select(jobs.c.queue_name, func.count()).select_from(table).join(jobs, jobs.c.id == table.c.job_id)
        for name, n in tx.conn.execute(stmt.group_by(jobs.c.queue_name)):
            counts.setdefault(name, {})[state] = int(n)
    endings: dict[str, dict[JobStatus, int]] = {}
    if with_finished:
        failed, ended = t.failed_executions, t.job_results
        groups = [jobs.c.queue_name, ended.c.status] if tx.keeps_results else [jobs.c.queue_name]
        stmt = (
            select(jobs.c.queue_name, groups[-1] if tx.keeps_results else null(), func.count())
            .outerjoin(failed, failed.c.job_id == jobs.c.id)
            .where(jobs.c.finished_at.is_not(None), failed.c.id.is_(None))  # as queries.list_jobs reads state
            .group_by(*groups)
        )
        if tx.keeps_results:
            stmt = stmt.outerjoin(ended, ended.c.job_id == jobs.c.id)
        for name, ending, n in tx.conn.execute(stmt):
            per_queue = counts.setdefault(name, {})
            per_queue[JobState.FINISHED] = per_queue.get(JobState.FINISHED, 0) + int(n)
            status = JobStatus(ending) if ending in set(ENDINGS) else JobStatus.FINISHED
            split = endings.setdefault(name, {})
            split[status] = split.get(status, 0) + int(n)
    paused = set(tx.conn.scalars(select(t.pauses.c.queue_name)))
    states = [s for s in JobState if with_finished or s is not JobState.FINISHED]
    queues = [
        QueueStats(
            name=name,
            counts={s: counts.get(name, {}).get(s, 0) for s in states},
            paused=name in paused,
            oldest_ready_at=oldest.get(name),
            endings={e: endings.get(name, {}).get(e, 0) for e in ENDINGS} if with_finished else {},
        )
        for name in sorted(set(counts) | paused)
    ]
    return QueueSnapshot(as_of=tx.now, queues=queues, with_finished=with_finished)


def process_list(tx: Tx) -> ProcessSnapshot:
    """Registered processes, oldest first, each with the number of claims it holds."""
    procs, claimed = tx.tables.processes, tx.tables.claimed_executions
    running: dict[int, int] = {
        pid: int(n)
        for pid, n in tx.conn.execute(select(claimed.c.process_id, func.count()).group_by(claimed.c.process_id))
    }
    rows = [
        ProcessRow(
            id=r.id,
            kind=r.kind,
            name=r.name,
            hostname=r.hostname,
            pid=r.pid,
            supervisor_id=r.supervisor_id,
            last_heartbeat_at=r.last_heartbeat_at,
            created_at=r.created_at,
            metadata=_metadata(r.metadata),
            running=int(running.get(r.id, 0)),
        )
        for r in tx.conn.execute(select(procs).order_by(procs.c.id))
    ]
    return ProcessSnapshot(as_of=tx.now, processes=rows)


def _metadata(text: str | None) -> dict[str, Any]:
    # Written by us or by the wheel as a JSON object; anything else is shown as found.
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {"raw": text}
    return value if isinstance(value, dict) else {"raw": value}
