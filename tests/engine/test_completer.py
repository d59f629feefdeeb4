"""The completer on a real database: typed outcomes, refused outcomes set aside, a stuck completer noticed.

Jobs are enqueued and claimed through the store under a registered process row, and
their outcomes handed to a Completer built here, so each test decides when it starts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from conftest import eventually
from quebec.engine.completer import Completer, write_outcomes
from quebec.engine.executor import Executor
from quebec.engine.outcomes import Discarded, Failed, Finished, Outcome, Released, Retried
from quebec.engine.worker import Worker
from quebec.registry import Registry
from quebec.store import Database, jobs, processes, queries, ready
from quebec.types import ClaimedJob, ErrorInfo, JobState, NewJob, ProcessInfo, QueueSelector

BAD_TEXT = "half a surrogate pair \udc80"  # no database can store it: every driver refuses to encode it


@pytest.fixture
def db(db_url: str, prefix: str) -> Iterator[Database]:
    database = Database(db_url, prefix=prefix)
    database.create_tables()
    yield database
    database.dispose()


@pytest.fixture
def pid(db: Database) -> int:
    return db.transact(
        processes.register, info=ProcessInfo(kind="Worker", name="w-test", pid=os.getpid(), hostname="test")
    )


@pytest.fixture
def completers() -> Iterator[list[Completer]]:
    made: list[Completer] = []
    yield made
    for completer in made:
        completer.close(timeout=5)


def claim(db: Database, pid: int, n: int) -> list[ClaimedJob]:
    now = db.clock.now()
    batch = [
        NewJob("default", "Job", json.dumps({"arguments": {"arguments": []}}), 0, f"job{i:09d}", now) for i in range(n)
    ]
    db.transact(jobs.enqueue_many, batch)
    return db.transact(ready.claim, queues=QueueSelector(), limit=n, process_id=pid)


def make_worker(db: Database, pid: int, completer: Completer, executor: Executor, **options: Any) -> Worker:
    """A worker on every queue, not started: a test steps run_once() or its lane itself."""
    return Worker(
        db,
        queues=QueueSelector(),
        threads=2,
        polling_interval=0.05,
        executor=executor,
        completer=completer,
        process_id=lambda: pid,
        **options,
    )


def state(db: Database, job_id: int) -> JobState | None:
    row = db.read(queries.get_job, job_id=job_id)
    return None if row is None else row.state


def test_write_outcomes_writes_each_kind_in_one_transaction_and_removes_what_it_wrote(db: Database, pid: int) -> None:
    done, discarded, failed, counted, retried, released = claim(db, pid, 6)
    next_run = NewJob("default", "Job", "{}", 0, "next00000001", db.clock.now() + timedelta(hours=1))
    outcomes: list[Outcome] = [
        Finished(done.id),
        Discarded(discarded.id, ErrorInfo("KeyError", "gone")),
        Failed(failed.id, ErrorInfo("ValueError", "no")),
        Failed(counted.id, ErrorInfo("ValueError", "again"), arguments='{"executions": 1}'),
        Retried(retried.id, next_run),
        Released(released.id),
    ]
    calls: list[str] = []
    with _counting_transactions(db, calls):
        assert write_outcomes(db, process_id=pid, outcomes=outcomes, preserve_finished=True) == []
    assert calls == ["finish_many", "release_many", "fail_many", "retry_many"]
    assert outcomes == []
    assert [state(db, j.id) for j in (done, discarded, failed, counted, retried, released)] == [
        JobState.FINISHED,
        JobState.FINISHED,
        JobState.FAILED,
        JobState.FAILED,
        JobState.FINISHED,
        JobState.READY,
    ]
    assert db.read(queries.get_job, job_id=counted.id).arguments == '{"executions": 1}'
    assert db.read(queries.get_job, job_id=failed.id).error["message"] == "no"
    runs = [r for r in db.read(queries.list_jobs) if r.active_job_id == "next00000001"]
    assert [r.state for r in runs] == [JobState.SCHEDULED]
    # claims this process no longer holds are reported, not silently skipped
    again = [Finished(done.id), Failed(failed.id, ErrorInfo("E", "m")), Retried(retried.id, next_run)]
    assert write_outcomes(db, process_id=pid, outcomes=again, preserve_finished=True) == [
        done.id,
        failed.id,
        retried.id,
    ]


@contextlib.contextmanager
def _counting_transactions(db: Database, calls: list[str]) -> Iterator[None]:
    """Record the name of each store function run through db.transact."""
    real = db.transact

    def transact(fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        calls.append(fn.__name__)
        return real(fn, *args, **kwargs)

    db.transact = transact  # type: ignore[method-assign]
    try:
        yield
    finally:
        del db.transact


def test_a_value_that_is_not_an_outcome_is_refused(db: Database, pid: int) -> None:
    completer = Completer(db, lambda: pid, preserve_finished=True)
    with pytest.raises(TypeError, match="an outcome is one of"):
        completer.submit(("fail", 1))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="an outcome is one of"):
        write_outcomes(db, process_id=pid, outcomes=[("fail", 1)], preserve_finished=True)  # type: ignore[list-item]


def test_an_outcome_the_database_refuses_is_retried_aside_then_recorded_as_a_failure_that_says_why(
    db: Database, pid: int, completers: list[Completer], caplog: pytest.LogCaptureFixture
) -> None:
    poison, *others = claim(db, pid, 5)
    completer = Completer(db, lambda: pid, preserve_finished=True, poison_after=1.0)
    completers.append(completer)
    completer.start()
    completer.submit(Failed(poison.id, ErrorInfo("ValueError", "boom"), arguments=BAD_TEXT))
    for job in others:
        completer.submit(Finished(job.id))
    # the others are written while the refused one is still being retried
    eventually(lambda: all(state(db, j.id) == JobState.FINISHED for j in others))
    assert state(db, poison.id) == JobState.CLAIMED
    eventually(lambda: state(db, poison.id) == JobState.FAILED, within=10)
    error = db.read(queries.get_job, job_id=poison.id).error
    assert error["exception_class"] == "OutcomeWriteError"
    assert error["message"].startswith(f"could not record the outcome of job {poison.id} (Failed with ValueError)")
    assert "recorded as failed instead" in error["message"]
    assert completer.flush(5)
    assert "completer.outcome_refused" in caplog.text


def test_a_worker_whose_completer_is_stuck_says_so_and_claims_nothing_until_it_catches_up(
    db: Database, pid: int, completers: list[Completer], caplog: pytest.LogCaptureFixture
) -> None:
    (held,) = claim(db, pid, 1)
    completer = Completer(db, lambda: pid, preserve_finished=True)  # not started: nothing gets written
    completers.append(completer)
    worker = make_worker(db, pid, completer, Executor(Registry(), db.clock), stuck_after=0.2)
    db.transact(jobs.enqueue_many, [NewJob("default", "Job", "{}", 0, "waiting00001", db.clock.now())])
    completer.submit(Finished(held.id))
    eventually(lambda: completer.stuck(0.2))
    caplog.set_level(logging.INFO, logger="quebec")
    worker.run_once()
    assert f"completer.stuck job_ids=[{held.id}] oldest=" in caplog.text
    assert worker.lane.pending() == []
    assert db.read(queries.state_counts).get(JobState.READY) == 1  # not claimed while stuck
    completer.start()
    eventually(lambda: state(db, held.id) == JobState.FINISHED)
    eventually(lambda: worker.run_once() is not None and len(worker.lane.pending()) == 1)
    assert "completer.caught_up" in caplog.text
    assert worker.release_unstarted() != []


def test_a_job_that_cannot_record_its_failure_counters_on_wheel_created_text_columns_still_fails(
    backend: str, db: Database, pid: int, completers: list[Completer]
) -> None:
    """The wheel creates jobs.arguments as TEXT on MySQL (64 KB): arguments near that size
    that fail grow past it with their counters. The job still ends failed, in time."""
    if backend != "mysql":
        pytest.skip("only MySQL/MariaDB has a 64 KB TEXT column")
    with db.engine.begin() as conn:
        conn.exec_driver_sql(f"ALTER TABLE {db.tables.jobs.name} MODIFY arguments TEXT")
    now = db.clock.now()
    shell = json.dumps({"arguments": {"arguments": [""]}})
    near_limit = json.dumps({"arguments": {"arguments": ["a" * (65_500 - len(shell))]}})  # 65,500 bytes: it fits
    db.transact(jobs.enqueue_many, [NewJob("default", "Job", near_limit, 0, "big000000001", now + timedelta())])
    (big,) = db.transact(ready.claim, queues=QueueSelector(), limit=1, process_id=pid)
    grown = near_limit[:-1] + ', "executions": 1, "exception_executions": {"[ValueError]": 1}}'  # it does not
    completer = Completer(db, lambda: pid, preserve_finished=True, poison_after=0.5)
    completers.append(completer)
    completer.start()
    completer.submit(Failed(big.id, ErrorInfo("ValueError", "x" * 100_000), arguments=grown))
    eventually(lambda: state(db, big.id) == JobState.FAILED, within=10)
    error = db.read(queries.get_job, job_id=big.id).error
    assert error["exception_class"] == "OutcomeWriteError" and "Data too long" in error["message"]


class _BrokenExecutor(Executor):
    """An executor with a bug of its own: it raises instead of returning an outcome."""

    def perform(self, job: ClaimedJob) -> Outcome:
        raise RuntimeError("a bug in the executor")


def test_the_lane_records_a_failure_when_the_executor_itself_raises(
    db: Database, pid: int, completers: list[Completer]
) -> None:
    completer = Completer(db, lambda: pid, preserve_finished=True)
    completers.append(completer)
    completer.start()
    worker = make_worker(db, pid, completer, _BrokenExecutor(Registry(), db.clock))
    (job,) = claim(db, pid, 1)
    worker.lane.start()
    worker.lane.submit(job)
    eventually(lambda: state(db, job.id) == JobState.FAILED)
    worker.lane.close()
    error = db.read(queries.get_job, job_id=job.id).error
    assert (error["exception_class"], error["message"]) == ("RuntimeError", "a bug in the executor")
