"""One flush mixing batch members and other jobs: each member's end is written with its outcome."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from quebec.engine.batch_members import BatchMemberExecutor, with_batch
from quebec.engine.completer import write_outcomes
from quebec.engine.outcomes import Discarded, Failed, Finished, Released, Retried
from quebec.store import Database, batch_completion, batches, jobs, processes, ready
from quebec.store.batches import NewBatch
from quebec.types import ErrorInfo, NewJob, NewJobs, ProcessInfo, QueueSelector


@pytest.fixture
def db(db_url: str, prefix: str) -> Iterator[Database]:
    database = Database(db_url, prefix=prefix)
    database.create_tables()
    yield database
    database.dispose()


def _job(db: Database, n: int) -> NewJob:
    return NewJob(
        "default", "J", f'{{"arguments":{{"arguments":[{n}]}},"enqueued_at":"x"}}', 0, f"aj{n:010d}", db.clock.now()
    )


def test_a_mixed_flush_settles_only_its_members(db: Database) -> None:
    batch_id = db.transact(batches.create, NewBatch(active_job_batch_id=f"u-{time.monotonic_ns()}"))
    members = db.transact(batches.enqueue_into, batch_id, NewJobs.of([_job(db, n) for n in range(5)])).ids
    others = db.transact(jobs.enqueue_many, [_job(db, n) for n in range(10, 13)]).ids
    db.transact(batch_completion.start, batch_id)
    pid = db.transact(processes.register, info=ProcessInfo(kind="Worker", name="w", pid=1, hostname="h"))
    claimed = db.transact(ready.claim, queues=QueueSelector(("*",)), limit=100, process_id=pid)
    assert len(claimed) == 8
    by_id = {c.id: c for c in claimed}
    error = ErrorInfo("E", "m")
    retry_of = by_id[members[3]]
    next_run = NewJob(
        "default", "J", retry_of.arguments or "", 0, retry_of.active_job_id or "", db.clock.now() + timedelta(hours=1)
    )
    outcomes = [
        with_batch(Finished(members[0]), batch_id),
        with_batch(Discarded(members[1], error), batch_id),
        with_batch(Failed(members[2], error), batch_id),
        with_batch(Retried(members[3], next_run), batch_id),
        with_batch(Released(members[4]), batch_id),  # ends nothing: stays outstanding
        Finished(others[0]),
        Failed(others[1], error),
        Retried(others[2], _job(db, 99)),
    ]
    assert write_outcomes(db, process_id=pid, outcomes=list(outcomes), preserve_finished=True) == []
    row = db.read(batches.find, batch_id=batch_id)
    assert row is not None and row.finished_at is None
    # outstanding: the retry's next attempt and the released job; failed: one
    assert (row.total_jobs, row.pending_jobs, row.live_failed_jobs) == (5, 2, 1)


def test_the_executor_marks_only_jobs_whose_envelope_names_a_batch() -> None:
    from quebec.clock import SystemClock
    from quebec.engine.executor import Executor
    from quebec.registry import Registry
    from quebec.types import ClaimedJob

    executor = BatchMemberExecutor(Executor(Registry(), SystemClock()))

    def claimed(arguments: str) -> ClaimedJob:
        return ClaimedJob(1, "default", "Unknown", arguments, 0, "aj", None, None)

    assert executor.perform(claimed('{"arguments":{"arguments":[]},"batch_id":7}')).batch_id == 7  # type: ignore[union-attr]
    assert executor.perform(claimed('{"arguments":{"arguments":[{"batch_id":3}]}}')).batch_id is None  # type: ignore[union-attr]
    assert executor.perform(claimed('{"arguments":{"arguments":[]},"callback_batch_id":7}')).batch_id is None  # type: ignore[union-attr]
