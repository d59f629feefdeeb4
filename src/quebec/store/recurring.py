"""Recurring tasks (recurring_tasks) and their firings (recurring_executions).

A firing is ∅ → ready | scheduled for one job plus its (task_key, run_at) row, in one
transaction: the unique index on (task_key, run_at) lets any number of schedulers race for
a run, and the loser's transaction rolls back whole, its job row included.

The pause lives where the wheel 0.4.2 keeps it: a nullable `paused_at` column it adds to
recurring_tasks when `recurring_pause` is on; tables without that column have no pauses.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Column, MetaData, String, Table, delete, func, inspect, select, text, type_coerce, update
from sqlalchemy.exc import SQLAlchemyError

from quebec.schedules import RecurringTask
from quebec.store import jobs
from quebec.store.database import Database, Tx
from quebec.types import NewJobs

PAUSED_AT = "paused_at"


class AlreadyFired(Exception):
    """Another scheduler recorded this (task_key, run_at) first: roll the firing back."""


def _values(task: RecurringTask, now: datetime) -> dict[str, Any]:
    return {
        "schedule": task.schedule,
        "class_name": task.class_name,
        "arguments": json.dumps(list(task.arguments), separators=(",", ":")),
        "queue_name": task.queue_name,
        "priority": task.priority,
        "static": task.static,
        "description": task.description,
        "updated_at": now,
    }


def upsert(tx: Tx, *, task: RecurringTask) -> bool:
    """∅ | row → row for `task.key`; True when something changed. An unchanged row keeps its
    updated_at, which marks when its schedule last changed (a restart must not lose that)."""
    t = tx.tables.recurring_tasks
    old = tx.conn.execute(select(*_COLUMNS(t)).where(t.c.key == task.key)).first()
    values = _values(task, tx.now)
    if old is None:
        inserted = tx.dialect.insert_if_absent(tx.conn, t, {"key": task.key, "created_at": tx.now, **values})
        if inserted:
            return True
    elif _task(old) == task:
        return False
    tx.conn.execute(update(t).where(t.c.key == task.key).values(**values))
    return True


def sync_static(tx: Tx, *, tasks: Sequence[RecurringTask]) -> tuple[int, int]:
    """The static rows become `tasks`: upserted, and static rows of other keys deleted (as
    Solid Queue's scheduler does at start). Dynamic rows are left alone. Returns (changed, deleted)."""
    changed = sum(upsert(tx, task=task) for task in tasks)
    t = tx.tables.recurring_tasks
    stale = t.c.static.is_(True) & t.c.key.not_in([task.key for task in tasks]) if tasks else t.c.static.is_(True)
    deleted = tx.conn.execute(delete(t).where(stale)).rowcount
    return changed, int(deleted or 0)


def remove(tx: Tx, *, key: str, static: bool | None = None) -> bool:
    t = tx.tables.recurring_tasks
    where = t.c.key == key
    if static is not None:
        where &= t.c.static.is_(static)
    return bool(tx.conn.execute(delete(t).where(where)).rowcount)


def load(tx: Tx, *, with_pause: bool = False) -> list[RecurringTask]:
    """Every task, by key; with their pause when the table has the column."""
    t = _with_pause(tx) if with_pause else tx.tables.recurring_tasks
    rows = tx.conn.execute(select(*_COLUMNS(t)).order_by(t.c.key)).all()
    return [_task(row) for row in rows]


def find(tx: Tx, *, key: str, with_pause: bool = False) -> RecurringTask | None:
    t = _with_pause(tx) if with_pause else tx.tables.recurring_tasks
    row = tx.conn.execute(select(*_COLUMNS(t)).where(t.c.key == key)).first()
    return _task(row) if row is not None else None


def last_runs(tx: Tx) -> dict[str, datetime]:
    """The latest recorded run_at of each task key."""
    e = tx.tables.recurring_executions
    rows = tx.conn.execute(select(e.c.task_key, func.max(e.c.run_at)).group_by(e.c.task_key)).all()
    return {key: at for key, at in rows if at is not None}


def record_run(tx: Tx, *, task_key: str, run_at: datetime, job: NewJobs) -> int:
    """∅ → ready | scheduled for `job`, recorded as the run of `task_key` at `run_at`.

    Loses to a scheduler that recorded the same run first: AlreadyFired is raised, so the
    transaction (the job included) rolls back. Returns the new job's id.
    """
    e = tx.tables.recurring_executions
    text_form = _wheel_text(tx, run_at)
    if text_form is None:
        same_run = e.c.run_at == run_at
    else:
        same_run = type_coerce(e.c.run_at, String).in_([text_form, tx.dialect.to_db(run_at)])
    taken = select(e.c.id).where((e.c.task_key == task_key) & same_run).limit(1)
    if tx.conn.scalar(taken) is not None:  # the common loss, found before inserting a job
        raise AlreadyFired(task_key)
    job_id = jobs.enqueue_many(tx, job).ids[0]
    if tx.conn.scalar(select(e.c.id).where(e.c.job_id == job_id).limit(1)) is not None:
        # A unique job answered with the job it duplicates: an earlier run, still to finish.
        raise AlreadyFired(task_key)
    if text_form is not None:
        # One writer at a time (the check above is final): insert the wheel's text as it is.
        columns = ("job_id", "task_key", "run_at", "created_at")
        tx.dialect.insert_rows(tx.conn, e, columns, [(job_id, task_key, text_form, tx.dialect.to_db(tx.now))])
        return job_id
    row = {"job_id": job_id, "task_key": task_key, "run_at": run_at, "created_at": tx.now}
    if not tx.dialect.insert_if_absent(tx.conn, e, row):
        raise AlreadyFired(task_key)
    return job_id


def _wheel_text(tx: Tx, run_at: datetime) -> str | None:
    """Where datetimes are stored as text by a single writer (SQLite), the text the wheel
    writes for a whole-second run_at (no fraction), else None. Run times compare as text there:
    written in the wheel's form, a run either scheduler recorded is one row for the unique index."""
    if not tx.dialect.single_writer or run_at.microsecond or not isinstance(tx.dialect.to_db(run_at), str):
        return None
    return f"{run_at:%Y-%m-%d %H:%M:%S}"


def fire(db: Database, *, task_key: str, run_at: datetime, job: NewJobs) -> int | None:
    """record_run in its own transaction: the job id, or None when another scheduler won."""
    try:
        return db.transact(record_run, task_key=task_key, run_at=run_at, job=job)
    except AlreadyFired:
        return None


def task_of(tx: Tx, *, job_id: int) -> str | None:
    """The key of the recurring task that enqueued job `job_id`, if one did."""
    e = tx.tables.recurring_executions
    found: str | None = tx.conn.scalar(select(e.c.task_key).where(e.c.job_id == job_id).limit(1))
    return found


# -- pauses (the wheel's paused_at column) ----------------------------------------------------
def has_pause_column(tx: Tx) -> bool:
    name = tx.tables.recurring_tasks.name
    return any(c["name"] == PAUSED_AT for c in inspect(tx.conn).get_columns(name))


def add_pause_column(tx: Tx) -> None:
    """Add recurring_tasks.paused_at (nullable, the timestamp type of created_at), as the
    wheel does with recurring_pause on. Idempotent; a racing process adding it too is fine."""
    if has_pause_column(tx):
        return
    t = tx.tables.recurring_tasks
    preparer = tx.conn.dialect.identifier_preparer
    kind = t.c.created_at.type.compile(dialect=tx.conn.dialect)
    try:
        with tx.conn.begin_nested():
            tx.conn.execute(text(f"ALTER TABLE {preparer.quote(t.name)} ADD COLUMN {PAUSED_AT} {kind} NULL"))
    except SQLAlchemyError:
        if not has_pause_column(tx):
            raise


def set_paused(tx: Tx, *, key: str, paused: bool) -> bool | None:
    """Pause or resume `key`: True when its state changed, False when it was so already,
    None when no task has that key. Resuming stamps updated_at: runs missed while paused are
    never replayed, not even by a scheduler that starts later."""
    t = _with_pause(tx)
    state = tx.conn.execute(select(t.c[PAUSED_AT]).where(t.c.key == key)).first()
    if state is None:
        return None
    if (state[0] is not None) == paused:
        return False
    values = {PAUSED_AT: tx.now} if paused else {PAUSED_AT: None, "updated_at": tx.now}
    tx.conn.execute(update(t).where(t.c.key == key).values(**values))
    return True


def paused_keys(tx: Tx) -> list[str]:
    t = _with_pause(tx)
    return sorted(tx.conn.scalars(select(t.c.key).where(t.c[PAUSED_AT].is_not(None))))


def _with_pause(tx: Tx) -> Table:
    """recurring_tasks with the optional paused_at column, which the schema does not declare
    (a table the wheel made without recurring_pause lacks it)."""
    t = tx.tables.recurring_tasks
    columns = [Column(c.name, c.type, primary_key=c.primary_key) for c in t.columns]
    return Table(t.name, MetaData(), *columns, Column(PAUSED_AT, t.c.created_at.type))


def _COLUMNS(t: Table) -> list[Column[Any]]:  # noqa: N802 - reads as the column list it is
    names = ["key", "schedule", "class_name", "arguments", "queue_name", "priority", "static", "description"]
    names += ["updated_at"] + ([PAUSED_AT] if PAUSED_AT in t.c else [])
    return [t.c[n] for n in names]


def _task(row: Any) -> RecurringTask:
    arguments = _arguments(row.arguments)
    return RecurringTask(
        key=row.key,
        schedule=row.schedule,
        class_name=row.class_name or "",
        arguments=tuple(arguments),
        queue_name=row.queue_name,
        priority=row.priority,
        static=bool(row.static),
        description=row.description,
        updated_at=row.updated_at,
        paused_at=getattr(row, PAUSED_AT, None),
    )


def _arguments(raw: str | None) -> list[Any]:
    if not raw:
        return []
    try:
        parsed = json.loads(raw)
    except ValueError:
        return []
    return parsed if isinstance(parsed, list) else [parsed]
