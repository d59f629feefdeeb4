"""Queue pauses: a paused queue's ready jobs stay ready and are not claimed."""

from __future__ import annotations

from sqlalchemy import delete, select

from quebec.store.database import Tx


def pause(tx: Tx, *, queue_name: str) -> bool:
    return tx.dialect.insert_if_absent(tx.conn, tx.tables.pauses, {"queue_name": queue_name, "created_at": tx.now})


def resume(tx: Tx, *, queue_name: str) -> bool:
    pauses = tx.tables.pauses
    return bool(tx.conn.execute(delete(pauses).where(pauses.c.queue_name == queue_name)).rowcount)


def paused_queues(tx: Tx) -> list[str]:
    pauses = tx.tables.pauses
    return sorted(tx.conn.scalars(select(pauses.c.queue_name)))
