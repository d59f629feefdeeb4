"""cleanup.clear_finished: finished → deleted, in batches; nothing else is touched."""

from __future__ import annotations

from store_support import (
    claimed_ids,
    clock_of,
    count_rows,
    db_fixture,  # noqa: F401 - a fixture
    enqueue,
    new_job,
    register,
    state_of,
    tables_fixture,  # noqa: F401 - a fixture
)

from quebec.store import Database, claimed, cleanup
from quebec.types import ErrorInfo, JobState


def test_clear_finished_deletes_only_jobs_finished_before_the_cutoff(db: Database) -> None:
    old_done, failed_job, recent_done, waiting = enqueue(db, *(new_job(db) for _ in range(4)))
    pid = register(db)
    claimed_ids(db, pid, limit=2)
    db.transact(claimed.finish_many, process_id=pid, job_ids=[old_done])
    db.transact(claimed.fail, process_id=pid, job_id=failed_job, error=ErrorInfo("E", "m"))
    clock_of(db).advance(3600)
    cutoff = db.clock.now()
    claimed_ids(db, pid, limit=1)
    clock_of(db).advance(1)
    db.transact(claimed.finish_many, process_id=pid, job_ids=[recent_done])
    assert db.transact(cleanup.clear_finished, finished_before=cutoff) == 1
    assert state_of(db, old_done) is None
    assert state_of(db, failed_job) == JobState.FAILED
    assert state_of(db, recent_done) == JobState.FINISHED
    assert state_of(db, waiting) == JobState.READY
    assert db.transact(cleanup.clear_finished, finished_before=cutoff) == 0


def test_clear_finished_deletes_at_most_limit_per_call(db: Database) -> None:
    ids = enqueue(db, *(new_job(db) for _ in range(5)))
    pid = register(db)
    claimed_ids(db, pid)
    db.transact(claimed.finish_many, process_id=pid, job_ids=ids)
    clock_of(db).advance(10)
    assert db.transact(cleanup.clear_finished, finished_before=db.clock.now(), limit=2) == 2
    assert db.transact(cleanup.clear_finished, finished_before=db.clock.now(), limit=2) == 2
    assert db.transact(cleanup.clear_finished, finished_before=db.clock.now(), limit=2) == 1
    assert count_rows(db, "jobs") == 0
