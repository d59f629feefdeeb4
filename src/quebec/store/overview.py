"""Read model for the dashboard's overview and /health: counts per state, throughput and
failures per time bucket, the age of the oldest ready and running job.

Counting a big table exactly reads every row (PostgreSQL keeps no row count), so a table
the dialect estimates above ESTIMATE_ABOVE rows is reported by its estimate, and the state
is listed in `estimated` so the page can mark it "≈".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Column, Table, func, literal, select

from quebec.store.database import Tx
from quebec.store.queries import state_tables
from quebec.types import JobState

ESTIMATE_ABOVE = 200_000
BUCKETS = 24


@dataclass(frozen=True, slots=True)
class StateCounts:
    as_of: datetime
    counts: dict[JobState, int]
    estimated: frozenset[JobState] = frozenset()
    oldest_ready_at: datetime | None = None
    oldest_claim_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Bucket:
    start: datetime
    finished: int = 0
    failed: int = 0

    @property
    def failure_rate(self) -> float:
        done = self.finished + self.failed
        return self.failed / done if done else 0.0


@dataclass(frozen=True, slots=True)
class Throughput:
    since: datetime
    bucket_seconds: int
    buckets: list[Bucket] = field(default_factory=list)


def state_counts(tx: Tx) -> StateCounts:
    """Jobs per state: exact, or the dialect's estimate for a table above ESTIMATE_ABOVE rows."""
    t = tx.tables
    tables = state_tables(t)
    counts: dict[JobState, int] = {}
    estimated: set[JobState] = set()
    for state, table in tables.items():
        guess = _estimate(tx, table)
        if guess is not None:
            counts[state] = guess
            estimated.add(state)
        else:
            counts[state] = _count(tx, table)
    jobs_guess = _estimate(tx, t.jobs)
    if jobs_guess is not None:
        # The jobs table holds every job; the finished are what the other states do not hold.
        counts[JobState.FINISHED] = max(0, jobs_guess - sum(counts.values()))
        estimated.add(JobState.FINISHED)
    else:
        failed = t.failed_executions
        stmt = (
            select(func.count())
            .select_from(t.jobs)
            .outerjoin(failed, failed.c.job_id == t.jobs.c.id)
            .where(t.jobs.c.finished_at.is_not(None), failed.c.id.is_(None))
        )
        counts[JobState.FINISHED] = int(tx.conn.execute(stmt).scalar() or 0)
    ready, claimed = t.ready_executions, t.claimed_executions
    return StateCounts(
        as_of=tx.now,
        counts=counts,
        estimated=frozenset(estimated),
        oldest_ready_at=tx.conn.execute(select(func.min(ready.c.created_at))).scalar(),
        oldest_claim_at=tx.conn.execute(select(func.min(claimed.c.created_at))).scalar(),
    )


def throughput(tx: Tx, *, hours: int = 24) -> Throughput:
    """Jobs finished and failed per bucket over the last `hours` (BUCKETS buckets)."""
    if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= 24 * 30:
        raise ValueError(f"the throughput window is 1 to 720 hours, not {hours!r}")
    seconds = hours * 3600 // BUCKETS
    since = tx.now - timedelta(seconds=seconds * BUCKETS)
    jobs, failed = tx.tables.jobs, tx.tables.failed_executions
    finished = _per_bucket(tx, jobs.c.finished_at, since, seconds)
    failures = _per_bucket(tx, failed.c.created_at, since, seconds)
    buckets = [
        Bucket(since + timedelta(seconds=seconds * i), finished.get(i, 0), failures.get(i, 0)) for i in range(BUCKETS)
    ]
    return Throughput(since=since, bucket_seconds=seconds, buckets=buckets)


def _per_bucket(tx: Tx, col: Column[Any], since: datetime, seconds: int) -> dict[int, int]:
    """Rows of a timestamp column since `since`, counted per bucket."""
    start = literal(since, type_=col.type)
    bucket = tx.dialect.bucket_index(start, col, seconds).label("b")
    stmt = select(bucket, func.count()).where(col >= since).group_by(bucket)
    out: dict[int, int] = {}
    for b, n in tx.conn.execute(stmt):
        if b is not None and 0 <= int(b) < BUCKETS:
            out[int(b)] = out.get(int(b), 0) + int(n)
    return out


def _estimate(tx: Tx, table: Table) -> int | None:
    guess = tx.dialect.estimated_rows(tx.conn, table)
    return guess if guess is not None and guess > ESTIMATE_ABOVE else None


def _count(tx: Tx, table: Table) -> int:
    return int(tx.conn.execute(select(func.count()).select_from(table)).scalar() or 0)
