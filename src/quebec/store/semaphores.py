"""Semaphores: one row per concurrency key, `value` = slots still free (the wheel's layout).

A key is `"ClassName/key"` (`spec/schema.md`). The row is created with `limit - taken` on
first use and counts down; releasing counts up to the limit again. `expires_at` is pushed
to now + the class's `concurrency_duration` on every take and give-back, so a row whose
holders all vanished without giving back (a crash, a deleted job) expires, and
concurrency maintenance deletes it: the slots come back.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import case, delete, select, update

from quebec.store.database import Tx
from quebec.types import ConcurrencyRule


def rule_of(tx: Tx, key: str) -> ConcurrencyRule:
    """The rule of a concurrency key: its class is the part before the first '/'."""
    return tx.flow.concurrency(key.partition("/")[0])


def _free(tx: Tx, key: str) -> int | None:
    """The key's free slots, its row locked until the transaction ends (None: no row)."""
    sem = tx.tables.semaphores
    return tx.conn.execute(select(sem.c.value).where(sem.c.key == key).with_for_update()).scalar()


def acquire(tx: Tx, *, key: str, wanted: int, rule: ConcurrencyRule) -> int:
    """Take up to `wanted` slots of `key`; returns how many were taken (0: all busy).

    Two transactions may create the row at once: the loser of the insert reads the
    winner's row (it waits for the winner's commit on the unique key) and counts down.
    """
    if wanted <= 0:
        return 0
    sem = tx.tables.semaphores
    expires = tx.now + rule.duration
    free = _free(tx, key)
    if free is None:
        taken = min(wanted, rule.limit)
        row = {"key": key, "value": rule.limit - taken, "expires_at": expires, "created_at": tx.now}
        if tx.dialect.insert_if_absent(tx.conn, sem, {**row, "updated_at": tx.now}):
            return taken
        free = _free(tx, key) or 0
    taken = min(wanted, free)
    if taken:
        tx.conn.execute(
            update(sem).where(sem.c.key == key).values(value=sem.c.value - taken, expires_at=expires, updated_at=tx.now)
        )
    return taken


def release(tx: Tx, *, key: str, count: int, rule: ConcurrencyRule) -> bool:
    """Give `count` slots of `key` back (0: only push the expiry on), never above the limit
    (a job unblocked by hand held none). False when the key has no row (it expired): nothing
    to give back, and a slot handed on must be taken afresh."""
    sem = tx.tables.semaphores
    raised = sem.c.value + count
    found = tx.conn.execute(
        update(sem)
        .where(sem.c.key == key)
        .values(
            value=case((raised > rule.limit, rule.limit), else_=raised),
            expires_at=tx.now + rule.duration,
            updated_at=tx.now,
        )
    )
    return bool(found.rowcount)


def expire(tx: Tx, *, limit: int) -> list[str]:
    """Delete up to `limit` semaphores whose expiry has passed; returns their keys.

    Their slots come back: a job that held one and is still running no longer counts,
    which is why concurrency_duration should outlast the longest job of its class.
    """
    sem = tx.tables.semaphores
    keys = list(
        tx.conn.scalars(
            tx.dialect.lock_skip_locked(
                select(sem.c.key).where(sem.c.expires_at < tx.now).order_by(sem.c.expires_at).limit(limit)
            )
        )
    )
    if keys:
        tx.conn.execute(delete(sem).where(sem.c.key.in_(keys), sem.c.expires_at < tx.now))
    return keys


def free_slots(tx: Tx, *, keys: Iterable[str]) -> dict[str, int]:
    """Free slots per key (a read, for tests and the dashboard); a key without a row is absent."""
    sem = tx.tables.semaphores
    rows = tx.conn.execute(select(sem.c.key, sem.c.value).where(sem.c.key.in_(list(keys))))
    return {r.key: r.value for r in rows}
