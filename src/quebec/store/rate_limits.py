"""Rate limits: a sliding log of the recent starts of each key, one locked row per key.

A true sliding window: a start is allowed only when fewer than `limit` starts of its key
fall in the `window` before it, whichever process made them, because counting and
recording happen under the key's row lock in one transaction. The log keeps at most
`limit` times, so a row stays small. The wheel's fixed two-bucket windows (semaphores
`rate:<key>:<n>`) are not shared: with both running, each enforces its own limit.

Times are `tx.now`, each process's clock: across hosts the window is as exact as their
clocks agree. A start counts from when its slot is taken, just before perform; MARGIN
widens the window by the few milliseconds between the two, so that no window of
*perform starts* sees more than `limit` either.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import select, update

from quebec.store.database import Tx

MARGIN = timedelta(milliseconds=50)


def _starts(tx: Tx, key: str) -> list[datetime] | None:
    """The key's logged starts, its row locked until the transaction ends (None: no row)."""
    t = tx.tables.rate_limits
    text = tx.conn.execute(select(t.c.starts).where(t.c.key == key).with_for_update()).scalar()
    return None if text is None else [datetime.fromisoformat(s) for s in json.loads(text)]


def _encode(starts: list[datetime]) -> str:
    return json.dumps([s.isoformat() for s in starts])


def take_slot(tx: Tx, *, key: str, limit: int, window: timedelta) -> datetime | None:
    """Record a start of `key` now if the window allows it: None. Otherwise nothing is
    recorded and the answer is when the oldest start in the window leaves it."""
    t = tx.tables.rate_limits
    starts = _starts(tx, key)
    if starts is None:
        row = {"key": key, "starts": _encode([tx.now]), "updated_at": tx.now}
        if tx.dialect.insert_if_absent(tx.conn, t, row):
            return None
        starts = _starts(tx, key) or []  # another process made the row meanwhile
    since = tx.now - window - MARGIN
    recent = sorted(s for s in starts if s > since)
    if len(recent) >= limit:
        return recent[-limit] + window + MARGIN
    recent.append(tx.now)
    tx.conn.execute(update(t).where(t.c.key == key).values(starts=_encode(recent[-limit:]), updated_at=tx.now))
    return None
