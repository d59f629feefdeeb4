"""Unique jobs: one row per held key in our `unique_jobs` table, its UNIQUE index the referee.

A new job takes its key by inserting the row (insert-if-absent: ON CONFLICT DO NOTHING,
or a caught duplicate-key error on MySQL), so two processes enqueueing the same job at
once cannot both win: the loser's insert waits for the winner's commit and finds the
key taken. A key held by a job that has finished (unique_for=True) or whose period
has passed is stale: the newcomer takes it over under the row's lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, update

from quebec.store.database import Tx


def take(
    tx: Tx, *, job_ids: Sequence[int], keys: Sequence[str | None], until: Sequence[datetime | None]
) -> dict[int, int]:
    """Take each new job's key (None: not unique); returns {new job id: id of the job that
    holds the key} for the duplicates, whose new rows the caller removes."""
    t = tx.tables.unique_jobs
    holders: dict[int, int] = {}
    for job_id, key, expires in zip(job_ids, keys, until, strict=True):
        if key is None:
            continue
        row = {"key": key, "job_id": job_id, "expires_at": expires, "created_at": tx.now}
        if tx.dialect.insert_if_absent(tx.conn, t, row):
            continue
        holder = _live_holder(tx, key)
        if holder is not None:
            holders[job_id] = holder
        else:  # stale (or gone since): the newcomer takes the key over
            taken = tx.conn.execute(
                update(t).where(t.c.key == key).values(job_id=job_id, expires_at=expires, created_at=tx.now)
            )
            if not taken.rowcount:
                tx.dialect.insert_if_absent(tx.conn, t, row)
    return holders


def _live_holder(tx: Tx, key: str) -> int | None:
    """The job holding `key` (its row locked), unless the hold is over."""
    t, jobs = tx.tables.unique_jobs, tx.tables.jobs
    row = tx.conn.execute(
        select(t.c.job_id, t.c.expires_at, jobs.c.finished_at)
        .join(jobs, jobs.c.id == t.c.job_id)
        .where(t.c.key == key)
        .with_for_update()
    ).first()
    if row is None:
        return None
    if row.expires_at is None:
        return None if row.finished_at is not None else int(row.job_id)
    return None if row.expires_at <= tx.now else int(row.job_id)


def hand_over(tx: Tx, *, moves: dict[int, int]) -> None:
    """A retry's next run holds the key its previous attempt held ({old id: new id})."""
    t = tx.tables.unique_jobs
    held = set(tx.conn.scalars(select(t.c.job_id).where(t.c.job_id.in_(list(moves)))))
    for old in sorted(held):
        tx.conn.execute(update(t).where(t.c.job_id == old).values(job_id=moves[old]))


def drop_duplicates(tx: Tx, job_ids: Sequence[int]) -> None:
    """Delete the rows of new jobs that turned out to be duplicates (they have no execution row yet)."""
    if job_ids:
        jobs = tx.tables.jobs
        tx.conn.execute(delete(jobs).where(jobs.c.id.in_(list(job_ids))))
