"""scheduled → ready (dispatch_due) and scheduled → finished (cancel_scheduled)."""

from __future__ import annotations

from sqlalchemy import select
from store_support import (
    claim,
    clock_of,
    count_rows,
    db_fixture,  # noqa: F401 - a fixture
    enqueue,
    new_job,
    register,
    state_of,
    tables_fixture,  # noqa: F401 - a fixture
)

from quebec.store import Database, scheduled
from quebec.types import JobState


def test_dispatch_due_moves_only_jobs_whose_time_has_come(db: Database) -> None:
    soon, later, much_later = enqueue(
        db, new_job(db, in_seconds=10), new_job(db, in_seconds=20), new_job(db, in_seconds=3600)
    )
    assert db.transact(scheduled.dispatch_due, limit=100) == 0
    clock_of(db).advance(10)
    assert db.transact(scheduled.dispatch_due, limit=100) == 1
    assert [state_of(db, j) for j in (soon, later, much_later)] == [
        JobState.READY,
        JobState.SCHEDULED,
        JobState.SCHEDULED,
    ]
    clock_of(db).advance(15)
    assert db.transact(scheduled.dispatch_due, limit=100) == 1
    assert [state_of(db, j) for j in (soon, later, much_later)] == [JobState.READY, JobState.READY, JobState.SCHEDULED]
    assert count_rows(db, "scheduled_executions") == 1


def test_dispatch_due_takes_at_most_limit_earliest_first(db: Database) -> None:
    ids = enqueue(db, *(new_job(db, in_seconds=s) for s in (50, 10, 40, 20, 30)))
    due_order = [ids[1], ids[3], ids[4], ids[2], ids[0]]
    clock_of(db).advance(60)
    assert db.transact(scheduled.dispatch_due, limit=2) == 2
    assert {j for j in ids if state_of(db, j) == JobState.READY} == set(due_order[:2])
    assert db.transact(scheduled.dispatch_due, limit=2) == 2
    assert db.transact(scheduled.dispatch_due, limit=2) == 1
    assert db.transact(scheduled.dispatch_due, limit=2) == 0
    assert count_rows(db, "ready_executions") == 5


def test_dispatch_due_keeps_queue_and_priority_so_claim_order_holds(db: Database) -> None:
    ids = enqueue(
        db,
        new_job(db, queue="mail", priority=9, in_seconds=5),
        new_job(db, queue="mail", priority=1, in_seconds=5),
        new_job(db, queue="other", priority=0, in_seconds=5),
    )
    clock_of(db).advance(5)
    assert db.transact(scheduled.dispatch_due, limit=10) == 3
    r = db.tables.ready_executions
    rows = db.read(
        lambda tx: tx.conn.execute(select(r.c.job_id, r.c.queue_name, r.c.priority).order_by(r.c.job_id)).all()
    )
    assert [tuple(x) for x in rows] == [(ids[0], "mail", 9), (ids[1], "mail", 1), (ids[2], "other", 0)]
    assert [j.id for j in claim(db, register(db), queues=("mail",))] == [ids[1], ids[0]]


def test_next_due_at_is_the_earliest_scheduled_time(db: Database) -> None:
    assert db.read(scheduled.next_due_at) is None
    early, late = new_job(db, in_seconds=30), new_job(db, in_seconds=90)
    enqueue(db, late, early)
    assert db.read(scheduled.next_due_at) == early.scheduled_at


def test_cancel_scheduled_finishes_only_scheduled_jobs(db: Database) -> None:
    waiting, ready_now = enqueue(db, new_job(db, in_seconds=60), new_job(db))
    assert db.transact(scheduled.cancel_scheduled, job_ids=[waiting, ready_now]) == 1
    assert state_of(db, waiting) == JobState.FINISHED
    assert state_of(db, ready_now) == JobState.READY
    clock_of(db).advance(120)
    assert db.transact(scheduled.dispatch_due, limit=10) == 0
