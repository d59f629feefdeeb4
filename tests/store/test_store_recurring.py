"""recurring_tasks and recurring_executions: sync_static, upsert, record_run, pauses."""

from __future__ import annotations

import pytest
from store_support import (
    clock_of,
    count_rows,
    db_fixture,  # noqa: F401 - a fixture
    new_job,
    tables_fixture,  # noqa: F401 - a fixture
)

from quebec.schedules import RecurringTask
from quebec.store import Database, Tx, jobs, recurring
from quebec.types import NewJobs


def task(
    key: str, schedule: str = "every hour", *, static: bool = True, args: tuple[object, ...] = ()
) -> RecurringTask:
    return RecurringTask(key, schedule, "ExampleJob", args, static=static)


def test_record_run_inserts_the_job_and_its_run_in_one_transaction_and_the_second_attempt_leaves_nothing(
    db: Database,
) -> None:
    at = clock_of(db).now().replace(microsecond=0)
    first = recurring.fire(db, task_key="t", run_at=at, job=NewJobs.of([new_job(db)]))
    assert first is not None
    assert recurring.fire(db, task_key="t", run_at=at, job=NewJobs.of([new_job(db)])) is None
    assert (count_rows(db, "jobs"), count_rows(db, "recurring_executions"), count_rows(db, "ready_executions")) == (
        1,
        1,
        1,
    )
    assert db.read(recurring.task_of, job_id=first) == "t"
    assert db.read(recurring.last_runs) == {"t": at}


def test_the_unique_index_decides_when_the_check_before_insert_is_passed(db: Database) -> None:
    """Two schedulers both past the SELECT: the insert of the second one finds the run taken."""
    if db.dialect.single_writer:
        pytest.skip("one writer at a time (SQLite): no second scheduler gets past the check in its transaction")
    at = clock_of(db).now().replace(microsecond=0)
    recurring.fire(db, task_key="t", run_at=at, job=NewJobs.of([new_job(db)]))

    def insert_without_check(tx: Tx) -> bool:
        job_id = jobs.enqueue_many(tx, NewJobs.of([new_job(db)])).ids[0]
        row = {"job_id": job_id, "task_key": "t", "run_at": at, "created_at": tx.now}
        return tx.dialect.insert_if_absent(tx.conn, tx.tables.recurring_executions, row)

    assert db.transact(insert_without_check) is False


def test_sync_static_upserts_the_files_tasks_and_deletes_only_stale_static_rows(db: Database) -> None:
    db.transact(recurring.upsert, task=task("dynamic", static=False))
    assert db.transact(recurring.sync_static, tasks=[task("a"), task("b", args=(1, "x"))]) == (2, 0)
    assert db.transact(recurring.sync_static, tasks=[task("a"), task("b", args=(1, "x"))]) == (0, 0)
    assert db.transact(recurring.sync_static, tasks=[task("b", "@daily")]) == (1, 1)
    rows = db.read(recurring.load)
    assert [(t.key, t.schedule, t.static, t.arguments) for t in rows] == [
        ("b", "@daily", True, ()),
        ("dynamic", "every hour", False, ()),
    ]
    assert db.transact(recurring.sync_static, tasks=[]) == (0, 1)
    assert [t.key for t in db.read(recurring.load)] == ["dynamic"]


def test_remove_can_spare_static_rows(db: Database) -> None:
    db.transact(recurring.sync_static, tasks=[task("s")])
    assert db.transact(recurring.remove, key="s", static=False) is False
    assert db.transact(recurring.remove, key="s") is True


def test_pauses_live_in_the_paused_at_column_added_once(db: Database) -> None:
    db.transact(recurring.add_pause_column)
    db.transact(recurring.add_pause_column)  # idempotent
    assert db.read(recurring.has_pause_column) is True
    db.transact(recurring.upsert, task=task("p", static=False))
    assert db.transact(recurring.set_paused, key="p", paused=True) is True
    assert db.transact(recurring.set_paused, key="p", paused=True) is False
    assert db.transact(recurring.set_paused, key="nope", paused=True) is None
    assert db.read(recurring.paused_keys) == ["p"]
    (found,) = db.read(recurring.load, with_pause=True)
    assert found.paused_at == clock_of(db).now()
    clock_of(db).advance(5)
    assert db.transact(recurring.set_paused, key="p", paused=False) is True
    (resumed,) = db.read(recurring.load, with_pause=True)
    assert resumed.paused_at is None and resumed.updated_at == clock_of(db).now()  # no replay of missed runs


def test_a_run_the_wheel_recorded_in_whole_seconds_is_taken(db: Database) -> None:
    """The wheel writes run_at without a fraction (SQLite keeps it as that text): the same run is one row."""
    at = clock_of(db).now().replace(microsecond=0)
    table = db.tables.recurring_executions.name
    first = recurring.fire(db, task_key="other", run_at=at, job=NewJobs.of([new_job(db)]))
    assert first is not None

    def as_the_wheel(tx: Tx) -> None:
        wheel_job = jobs.enqueue_many(tx, NewJobs.of([new_job(db)])).ids[0]
        tx.conn.exec_driver_sql(
            f"INSERT INTO {table} (job_id, task_key, run_at, created_at) VALUES ({wheel_job}, 'wheel', "
            f"'{at:%Y-%m-%d %H:%M:%S}', '{at:%Y-%m-%d %H:%M:%S}')"
        )

    db.transact(as_the_wheel)
    assert recurring.fire(db, task_key="wheel", run_at=at, job=NewJobs.of([new_job(db)])) is None
    assert recurring.fire(db, task_key="other", run_at=at, job=NewJobs.of([new_job(db)])) is None
    assert db.read(recurring.last_runs) == {"other": at, "wheel": at}
