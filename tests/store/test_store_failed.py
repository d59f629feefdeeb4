"""failed → ready (retry_failed) and failed → finished (discard_failed)."""

from __future__ import annotations

from store_support import (
    claimed_ids,
    count_rows,
    db_fixture,  # noqa: F401 - a fixture
    enqueue,
    job_row,
    new_job,
    register,
    state_of,
    tables_fixture,  # noqa: F401 - a fixture
)

from quebec.store import Database, claimed, failed
from quebec.types import ErrorInfo, JobState


def failed_jobs(db: Database, n: int, *, queue: str = "default", priority: int = 0) -> list[int]:
    ids = enqueue(db, *(new_job(db, queue=queue, priority=priority) for _ in range(n)))
    pid = register(db)
    assert sorted(claimed_ids(db, pid)) == sorted(ids)
    for job_id in ids:
        assert db.transact(claimed.fail, process_id=pid, job_id=job_id, error=ErrorInfo("E", "m"))
    return ids


def test_retry_failed_puts_the_same_job_row_back_to_ready(db: Database) -> None:
    (job_id,) = failed_jobs(db, 1, queue="mail", priority=3)
    assert db.transact(failed.retry_failed, job_ids=[job_id]) == 1
    row = job_row(db, job_id)
    assert (row.state, row.error, row.finished_at) == (JobState.READY, None, None)
    assert count_rows(db, "jobs") == 1
    assert claimed_ids(db, register(db), queues=("mail",)) == [job_id]


def test_retry_failed_counts_only_jobs_that_were_failed(db: Database) -> None:
    ids = failed_jobs(db, 2)
    (ready_id,) = enqueue(db, new_job(db))
    assert db.transact(failed.retry_failed, job_ids=[ids[0], ready_id, 10**12]) == 1
    assert state_of(db, ids[1]) == JobState.FAILED
    assert state_of(db, ready_id) == JobState.READY
    assert count_rows(db, "ready_executions") == 2
    assert db.transact(failed.retry_failed, job_ids=[ids[0]]) == 0


def test_discard_failed_finishes_the_job_and_drops_its_error(db: Database) -> None:
    ids = failed_jobs(db, 3)
    assert db.transact(failed.discard_failed, job_ids=ids[:2]) == 2
    assert [state_of(db, j) for j in ids] == [JobState.FINISHED, JobState.FINISHED, JobState.FAILED]
    assert job_row(db, ids[0]).finished_at == db.clock.now()
    assert count_rows(db, "failed_executions") == 1
    assert db.transact(failed.discard_failed, job_ids=ids[:2]) == 0
