"""Results and waiting: perform's return value is kept, job.wait() returns it or raises how the job ended."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

import quebec
from conftest import eventually
from integration.integration_support import Procs, import_package, start_worker, worker_env
from quebec.retry import RetryStrategy
from quebec.types import JobStatus

WHEN = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)


def test_wait_returns_what_perform_returned_and_get_job_shows_it(qc: Any) -> None:
    @qc.register_job
    class Total(quebec.BaseClass):
        def perform(self, *numbers: int) -> dict[str, Any]:
            return {"sum": sum(numbers), "at": WHEN, "exact": Decimal("1.10")}

    job = Total.perform_later(1, 2, 3)
    assert job.status is JobStatus.READY
    qc.start(spawn=["worker"])
    assert job.wait(timeout=20) == {"sum": 6, "at": WHEN, "exact": Decimal("1.10")}
    row = qc.get_job(job.id)
    assert row.status is JobStatus.FINISHED and row.result == job.wait(timeout=0)
    assert job.status is JobStatus.FINISHED
    assert qc.wait_for_jobs([job, job.id], timeout=1) == [row.result, row.result]


def test_a_failed_jobs_wait_raises_its_error_and_a_retried_job_is_followed_to_its_last_attempt(qc: Any) -> None:
    @qc.register_job
    class Broken(quebec.BaseClass):
        def perform(self) -> None:
            raise ValueError("broken on purpose")

    @qc.register_job
    class SecondTime(quebec.BaseClass):
        retry_on = [RetryStrategy((ConnectionError,), wait=0, attempts=3)]

        def perform(self) -> str:
            if self.executions == 0:
                raise ConnectionError("first try")
            return f"done after {self.executions}"

    broken, second = Broken.perform_later(), SecondTime.perform_later()
    qc.start(spawn=["worker", "dispatcher"])
    assert second.wait(timeout=20) == "done after 1"
    assert qc.get_job(second.id).status is JobStatus.RETRIED
    with pytest.raises(quebec.JobFailed) as failed:
        broken.wait(timeout=20)
    assert (failed.value.exception_class, failed.value.message) == ("ValueError", "broken on purpose")
    assert failed.value.job_id == broken.id and any("broken on purpose" in line for line in failed.value.backtrace)
    assert str(failed.value) == f"job {broken.id} failed with ValueError: broken on purpose"
    with pytest.raises(quebec.JobFailed):  # a mix: the results of the others are not lost, the failure is raised
        qc.wait_for_jobs([second, broken], timeout=5)


def test_discarded_and_cancelled_jobs_are_not_finished_and_wait_says_so_at_once(qc: Any) -> None:
    @qc.register_job
    class Dropped(quebec.BaseClass):
        discard_on = [KeyError]

        def perform(self) -> None:
            raise KeyError("gone")

    dropped = Dropped.perform_later()
    later = Dropped.set(wait=3600).perform_later()
    assert qc.cancel_scheduled(later.id)
    started = time.monotonic()
    with pytest.raises(quebec.JobCancelled, match="cancelled before it ran"):
        later.wait(timeout=30)
    assert time.monotonic() - started < 5
    assert qc.get_job(later.id).status is JobStatus.CANCELLED
    qc.drain_one().perform()
    with pytest.raises(quebec.JobDiscarded):
        dropped.wait(timeout=30)
    assert qc.get_job(dropped.id).status is JobStatus.DISCARDED
    assert qc.get_job(dropped.id).state == "finished"  # the Solid Queue view is unchanged


def test_wait_times_out_in_one_sentence_and_bad_waits_are_refused(qc: Any) -> None:
    @qc.register_job
    class Idle(quebec.BaseClass):
        def perform(self) -> None:
            pass

    job = Idle.perform_later()
    with pytest.raises(quebec.WaitTimeout, match=rf"1 job\(s\) still not done after 0.2s: {job.id} \(ready\)"):
        job.wait(timeout=0.2)
    with pytest.raises(quebec.UnknownJob, match="no job 999999"):
        qc.wait_for_job(999999, timeout=1)
    for bad in (-1, "5", True):
        with pytest.raises(ValueError, match="timeout"):
            job.wait(timeout=bad)
    with pytest.raises(ValueError, match="not enqueued"):
        qc.wait_for_job(Idle.build())


def test_results_outlive_deleted_rows_and_classes_may_opt_out(make_qc: Any, caplog: pytest.LogCaptureFixture) -> None:
    qc = make_qc(preserve_finished_jobs=False)

    @qc.register_job
    class Answer(quebec.BaseClass):
        def perform(self) -> int:
            return 42

    @qc.register_job
    class Quiet(quebec.BaseClass):
        store_result = False

        def perform(self) -> int:
            return 7

    @qc.register_job
    class Odd(quebec.BaseClass):
        def perform(self) -> object:
            return object()

    answer, quiet, odd = Answer.perform_later(), Quiet.perform_later(), Odd.perform_later()
    with caplog.at_level(logging.WARNING, logger="quebec.worker"):
        for execution in qc.drain_batch(3):
            execution.perform()
    assert qc.get_job(answer.id) is None  # preserve_finished_jobs=False deleted the row
    assert answer.wait(timeout=5) == 42
    assert quiet.wait(timeout=5) is None
    assert odd.wait(timeout=5) is None
    assert any("job.result_not_stored" in r.getMessage() and "object" in r.getMessage() for r in caplog.records)


def test_wait_async_waits_without_blocking_the_loop(qc: Any) -> None:
    @qc.register_job
    class Slowish(quebec.BaseClass):
        def perform(self) -> str:
            time.sleep(0.1)
            return "ok"

    job = Slowish.perform_later()
    qc.start(spawn=["worker"])

    async def main() -> tuple[Any, int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        result = await job.wait_async(timeout=20)
        ticker.cancel()
        return result, ticks

    result, ticks = asyncio.run(main())
    assert result == "ok" and ticks > 0


def test_tables_without_job_results_still_wait_and_say_why_results_are_missing(
    backend: str, make_qc: Any, caplog: pytest.LogCaptureFixture
) -> None:
    if backend == "sqlite":
        pytest.skip("an embedded SQLite database gets every missing table when it is opened")
    qc = make_qc()
    name = qc.db.tables.job_results.name
    with qc.db.engine.begin() as conn:
        conn.execute(text(f"DROP TABLE {name}"))
    with caplog.at_level(logging.WARNING, logger="quebec.store"):
        old = quebec.Quebec(qc.db.url, table_name_prefix=qc.db.tables.prefix)
    try:
        assert any("store.no_results_table" in r.getMessage() for r in caplog.records)

        @old.register_job
        class Plain(quebec.BaseClass):
            def perform(self) -> int:
                return 1

        job = Plain.perform_later()
        old.drain_one().perform()
        assert job.wait(timeout=5) is None  # finished, but nowhere to keep the result
    finally:
        old.close()
        qc.create_tables()  # back for the fixture's clean-up


JOB_PACKAGE = """
import quebec


class Square(quebec.BaseClass):
    def perform(self, n):
        return n * n
"""


@pytest.mark.slow
def test_wait_wakes_when_a_worker_in_another_process_finishes_the_job(
    db_url: str,
    prefix: str,
    make_qc: Callable[..., Any],
    procs: Procs,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    package = f"square_jobs_{prefix}"
    module = import_package(tmp_path, package, JOB_PACKAGE, monkeypatch)
    qc = make_qc()
    qc.register_job(module.Square)
    jobs = [module.Square.perform_later(n) for n in range(5)]
    start_worker(procs, package, worker_env(db_url, prefix, tmp_path), tmp_path)
    assert qc.wait_for_jobs(jobs, timeout=30) == [0, 1, 4, 9, 16]
    eventually(lambda: all(qc.get_job(j.id).status is JobStatus.FINISHED for j in jobs))


def test_clear_finished_jobs_takes_their_results_with_them(qc: Any) -> None:
    @qc.register_job
    class Answer(quebec.BaseClass):
        def perform(self) -> int:
            return 42

    job = Answer.perform_later()
    qc.drain_one().perform()
    assert job.wait(timeout=5) == 42
    assert qc.clear_finished_jobs(finished_before=datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=5)) == 1
    with pytest.raises(quebec.UnknownJob):
        job.wait(timeout=1)
    assert qc.db.read(lambda tx: tx.conn.execute(tx.tables.job_results.select()).all()) == []


def test_a_running_job_shows_when_it_started(qc: Any) -> None:
    seen: list[Any] = []

    @qc.register_job
    class Look(quebec.BaseClass):
        def perform(self) -> None:
            row = qc.get_job(self.id)
            seen.append((row.status, row.started_at, row.enqueued_at))

    job = Look.perform_later()
    assert qc.get_job(job.id).started_at is None
    qc.drain_one().perform()
    [(status, started_at, enqueued_at)] = seen
    assert status is JobStatus.RUNNING and started_at is not None and started_at >= enqueued_at
