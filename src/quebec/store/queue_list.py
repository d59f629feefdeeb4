"""Read model for the dashboard's queues page: per queue its ready, scheduled, blocked and
running jobs, whether it is paused, and when its longest-waiting ready job became ready.

Only execution tables are read (the running count joins its few claims to their jobs);
failed and finished jobs are left to their own pages, as counting them per queue would
read the big tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from quebec.store.database import Tx


@dataclass(frozen=True, slots=True)
class QueueRow:
    name: str
    ready: int = 0
    scheduled: int = 0
    blocked: int = 0
    running: int = 0
    paused: bool = False
    oldest_ready_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class QueueList:
    as_of: datetime
    queues: list[QueueRow]


def queue_list(tx: Tx) -> QueueList:
    t = tx.tables
    rows: dict[str, dict[str, object]] = {}
    ready = t.ready_executions
    for name, n, first in tx.conn.execute(
        select(ready.c.queue_name, func.count(), func.min(ready.c.created_at)).group_by(ready.c.queue_name)
    ):
        rows.setdefault(name, {}).update(ready=int(n), oldest_ready_at=first)
    for field, table in (("scheduled", t.scheduled_executions), ("blocked", t.blocked_executions)):
        for name, n in tx.conn.execute(select(table.c.queue_name, func.count()).group_by(table.c.queue_name)):
            rows.setdefault(name, {})[field] = int(n)
    claimed, jobs = t.claimed_executions, t.jobs
    stmt = select(jobs.c.queue_name, func.count()).select_from(claimed).join(jobs, jobs.c.id == claimed.c.job_id)
    for name, n in tx.conn.execute(stmt.group_by(jobs.c.queue_name)):
        rows.setdefault(name, {})["running"] = int(n)
    for name in tx.conn.scalars(select(t.pauses.c.queue_name)):
        rows.setdefault(name, {})["paused"] = True
    return QueueList(as_of=tx.now, queues=[QueueRow(name, **rows[name]) for name in sorted(rows)])  # type: ignore[arg-type]
