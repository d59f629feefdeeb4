"""Read model for the dashboard's keys page: the semaphores (concurrency, queue-limit and
rate-window keys with their free slots) and the concurrency keys jobs are blocked on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from quebec.store.database import Tx

KEYS_MAX = 500


@dataclass(frozen=True, slots=True)
class SemaphoreRow:
    key: str
    value: int  # free slots
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class BlockedKey:
    key: str
    jobs: int
    oldest_at: datetime | None
    next_expiry: datetime | None


@dataclass(frozen=True, slots=True)
class KeyListing:
    as_of: datetime
    semaphores: list[SemaphoreRow]
    blocked: list[BlockedKey]


def key_listing(tx: Tx, *, limit: int = KEYS_MAX) -> KeyListing:
    """At most `limit` semaphores (by key) and blocked keys (most jobs first)."""
    s = tx.tables.semaphores
    semaphores = [
        SemaphoreRow(r.key, int(r.value), r.expires_at)
        for r in tx.conn.execute(select(s.c.key, s.c.value, s.c.expires_at).order_by(s.c.key).limit(limit))
    ]
    b = tx.tables.blocked_executions
    n = func.count().label("n")
    stmt = (
        select(b.c.concurrency_key, n, func.min(b.c.created_at), func.min(b.c.expires_at))
        .group_by(b.c.concurrency_key)
        .order_by(n.desc(), b.c.concurrency_key)
        .limit(limit)
    )
    blocked = [BlockedKey(key, int(count), first, expiry) for key, count, first, expiry in tx.conn.execute(stmt)]
    return KeyListing(as_of=tx.now, semaphores=semaphores, blocked=blocked)
