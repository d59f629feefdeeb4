"""claimed → finished | failed | ready | scheduled, each guarded by the claiming process."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from store_support import (
    claimed_ids,
    clock_of,
    count_rows,
    db_fixture,  # noqa: F401 - a fixture
    enqueue,
    job_row,
    new_job,
    register,
    state_of,
    tables_fixture,  # noqa: F401 - a fixture
)

from quebec.store import Database, claimed, processes
from quebec.types import ErrorInfo, JobState

BOOM = ErrorInfo(
    "ValueError",
    "boom: 'quoted' \"double\" ünïcode",
    ("Traceback (most recent call last):", '  File "job.py", line 3, in perform', "ValueError: boom"),
)


@pytest.fixture
def pid(db: Database) -> int:
    return register(db)


def test_finish_many_sets_finished_at_and_removes_the_claims(db: Database, pid: int) -> None:
    ids = enqueue(db, *(new_job(db) for _ in range(3)))
    assert claimed_ids(db, pid) == ids
    clock_of(db).advance(5)
    result = db.transact(claimed.finish_many, process_id=pid, job_ids=ids[:2])
    assert result.job_ids == tuple(ids[:2])
    assert result.lost == ()
    for job_id in ids[:2]:
        row = job_row(db, job_id)
        assert row.state == JobState.FINISHED
        assert row.finished_at == db.clock.now()
    assert state_of(db, ids[2]) == JobState.CLAIMED
    assert count_rows(db, "claimed_executions") == 1


def test_finish_many_of_nothing_does_nothing(db: Database, pid: int) -> None:
    result = db.transact(claimed.finish_many, process_id=pid, job_ids=[])
    assert (result.job_ids, result.lost) == ((), ())


def test_finish_many_reports_claims_held_by_another_process_as_lost(db: Database, pid: int) -> None:
    mine, theirs = enqueue(db, new_job(db), new_job(db))
    other = register(db)
    assert claimed_ids(db, pid, limit=1) == [mine]
    assert claimed_ids(db, other, limit=1) == [theirs]
    result = db.transact(claimed.finish_many, process_id=pid, job_ids=[mine, theirs])
    assert result.job_ids == (mine,)
    assert result.lost == (theirs,)
    assert state_of(db, theirs) == JobState.CLAIMED
    assert job_row(db, theirs).process_id == other


def test_finish_many_reports_claims_lost_to_pruning(db: Database, pid: int) -> None:
    (job_id,) = enqueue(db, new_job(db))
    claimed_ids(db, pid)
    clock_of(db).advance(600)
    db.transact(processes.prune_dead, stale_before=db.clock.now() - timedelta(seconds=60))
    assert state_of(db, job_id) == JobState.READY
    result = db.transact(claimed.finish_many, process_id=pid, job_ids=[job_id])
    assert (result.job_ids, result.lost) == ((), (job_id,))
    assert state_of(db, job_id) == JobState.READY
    assert job_row(db, job_id).finished_at is None


def test_finish_many_without_preserve_deletes_the_job_rows(db: Database, pid: int) -> None:
    ids = enqueue(db, new_job(db), new_job(db))
    claimed_ids(db, pid)
    result = db.transact(claimed.finish_many, process_id=pid, job_ids=ids[:1], preserve=False)
    assert result.job_ids == (ids[0],)
    assert state_of(db, ids[0]) is None
    assert state_of(db, ids[1]) == JobState.CLAIMED
    assert count_rows(db, "jobs") == 1


def test_fail_writes_the_error_json_and_leaves_finished_at_null(db: Database, pid: int) -> None:
    (job_id,) = enqueue(db, new_job(db))
    claimed_ids(db, pid)
    assert db.transact(claimed.fail, process_id=pid, job_id=job_id, error=BOOM) is True
    row = job_row(db, job_id)
    assert row.state == JobState.FAILED
    assert row.finished_at is None
    assert row.error == {"exception_class": "ValueError", "message": BOOM.message, "backtrace": list(BOOM.backtrace)}
    raw = db.read(lambda tx: tx.conn.execute(tx.tables.failed_executions.select()).one())
    assert json.loads(raw.error) == row.error
    assert count_rows(db, "claimed_executions") == 0


def test_fail_replaces_the_arguments_when_given(db: Database, pid: int) -> None:
    (job_id,) = enqueue(db, new_job(db))
    claimed_ids(db, pid)
    counted = '{"executions":1,"exception_executions":{"[ValueError]":1}}'
    assert db.transact(claimed.fail, process_id=pid, job_id=job_id, error=BOOM, arguments=counted)
    assert job_row(db, job_id).arguments == counted


def test_fail_of_a_job_another_process_holds_changes_nothing(db: Database, pid: int) -> None:
    (job_id,) = enqueue(db, new_job(db))
    claimed_ids(db, register(db))
    assert db.transact(claimed.fail, process_id=pid, job_id=job_id, error=BOOM) is False
    assert state_of(db, job_id) == JobState.CLAIMED
    assert count_rows(db, "failed_executions") == 0


def test_release_many_puts_jobs_back_to_ready_where_they_can_be_claimed_again(db: Database, pid: int) -> None:
    ids = enqueue(db, new_job(db, queue="mail", priority=2), new_job(db, queue="mail", priority=1))
    claimed_ids(db, pid)
    assert sorted(db.transact(claimed.release_many, process_id=pid, job_ids=ids)) == sorted(ids)
    assert [state_of(db, j) for j in ids] == [JobState.READY, JobState.READY]
    assert claimed_ids(db, register(db), queues=("mail",)) == [ids[1], ids[0]]


def test_release_many_leaves_claims_of_other_processes_alone(db: Database, pid: int) -> None:
    mine, theirs = enqueue(db, new_job(db), new_job(db))
    other = register(db)
    claimed_ids(db, pid, limit=1)
    claimed_ids(db, other, limit=1)
    assert db.transact(claimed.release_many, process_id=pid, job_ids=[mine, theirs]) == [mine]
    assert state_of(db, mine) == JobState.READY
    assert state_of(db, theirs) == JobState.CLAIMED
    assert db.transact(claimed.release_many, process_id=pid, job_ids=[]) == []


def test_retry_finishes_the_claim_and_schedules_a_new_row_with_the_same_active_job_id(db: Database, pid: int) -> None:
    first = new_job(db, queue="q", priority=3)
    (job_id,) = enqueue(db, first)
    claimed_ids(db, pid)
    next_run = new_job(db, queue="q", priority=3, in_seconds=30, active_job_id=first.active_job_id)
    new_id = db.transact(claimed.retry, process_id=pid, job_id=job_id, next_run=next_run)
    assert new_id is not None and new_id != job_id
    assert state_of(db, job_id) == JobState.FINISHED
    retried = job_row(db, new_id)
    assert (retried.state, retried.active_job_id, retried.scheduled_at) == (
        JobState.SCHEDULED,
        first.active_job_id,
        next_run.scheduled_at,
    )
    assert db.transact(claimed.retry, process_id=pid, job_id=job_id, next_run=next_run) is None


def test_discard_finishes_a_claimed_job_without_a_failed_row(db: Database, pid: int) -> None:
    (job_id,) = enqueue(db, new_job(db))
    claimed_ids(db, pid)
    assert db.transact(claimed.discard, process_id=pid, job_id=job_id) is True
    assert state_of(db, job_id) == JobState.FINISHED
    assert count_rows(db, "failed_executions") == 0
    assert db.transact(claimed.discard, process_id=pid, job_id=job_id) is False


def test_reschedule_moves_a_claimed_job_back_to_scheduled(db: Database, pid: int) -> None:
    (job_id,) = enqueue(db, new_job(db, queue="api", priority=4))
    claimed_ids(db, pid)
    run_at = db.clock.now() + timedelta(seconds=90)
    assert db.transact(claimed.reschedule, process_id=pid, job_id=job_id, run_at=run_at) is True
    assert state_of(db, job_id) == JobState.SCHEDULED
    sched = db.read(lambda tx: tx.conn.execute(tx.tables.scheduled_executions.select()).one())
    assert (sched.job_id, sched.queue_name, sched.priority, sched.scheduled_at) == (job_id, "api", 4, run_at)
    assert db.transact(claimed.reschedule, process_id=pid, job_id=job_id, run_at=run_at) is False
