"""qc.drain_one() / qc.drain_batch(n) and Execution.perform(): a worker's claim and run, in the test's thread."""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from typing import Any

import pytest
from api_support import count_rows, state

import quebec
from quebec.context import JobContext, job_context_var
from quebec.store import queries
from quebec.types import JobState


def test_drain_one_then_perform_finishes_the_job_under_a_registered_worker_row(qc: Any) -> None:
    ran: list[tuple[str, str]] = []

    @qc.register_job
    class Greet(quebec.BaseClass):
        def perform(self, name: str, punctuation: str = "!") -> None:
            ran.append((name, punctuation))

    job = Greet.perform_later("Ada", punctuation="?")
    execution = qc.drain_one()
    assert isinstance(execution, quebec.Execution)
    assert (execution.id, execution.queue, execution.class_name) == (job.id, "default", Greet.__qualname__)
    assert execution.jid == job.active_job_id and execution.job.id == job.id
    row = qc.get_job(job.id)
    assert row.state == JobState.CLAIMED and row.process_id is not None
    process = qc.db.read(lambda tx: tx.conn.execute(tx.tables.processes.select()).one())
    assert process.id == row.process_id and process.kind == "Worker"
    assert json.loads(process.metadata)["drain"] is True

    assert execution.perform() is None
    assert ran == [("Ada", "?")]
    assert state(qc, job.id) == JobState.FINISHED
    assert count_rows(qc, "claimed_executions") == 0
    qc.close()
    assert count_rows(qc, "processes") == 0


def test_a_failing_job_is_failed_and_a_retried_one_scheduled_as_a_worker_leaves_them(qc: Any) -> None:
    @qc.register_job
    class Broken(quebec.BaseClass):
        def perform(self) -> None:
            raise ValueError("broken on purpose")

    @qc.register_job
    class Flaky(quebec.BaseClass):
        retry_on = [quebec.RetryStrategy((ConnectionError,), wait=timedelta(seconds=60), attempts=3)]

        def perform(self) -> None:
            raise ConnectionError("flaky")

    broken = Broken.perform_later()
    qc.drain_one().perform()
    row = qc.get_job(broken.id)
    assert row.state == JobState.FAILED
    assert (row.error["exception_class"], row.error["message"]) == ("ValueError", "broken on purpose")
    assert json.loads(row.arguments)["executions"] == 1

    flaky = Flaky.perform_later()
    qc.drain_one().perform()
    assert state(qc, flaky.id) == JobState.FINISHED
    scheduled = qc.db.read(queries.list_jobs, state=JobState.SCHEDULED, limit=10)
    assert [(r.class_name, r.active_job_id) for r in scheduled] == [(Flaky.__qualname__, flaky.active_job_id)]
    with pytest.raises(RuntimeError, match="No ready job to claim"):
        qc.drain_one()  # the retry is a minute away


def test_nothing_ready_raises_and_drain_batch_returns_an_empty_list(qc: Any) -> None:
    @qc.register_job
    class Later(quebec.BaseClass):
        def perform(self) -> None:
            pass

    Later.set(wait=3600).perform_later()
    with pytest.raises(RuntimeError, match=r"^No ready job to claim: "):
        qc.drain_one()
    assert qc.drain_batch(5) == []
    for bad in (0, -1, 2.5, True, "3"):
        with pytest.raises(ValueError, match="drain_batch"):
            qc.drain_batch(bad)


def test_drain_batch_claims_in_one_go_by_priority_and_each_execution_performs_once(qc: Any) -> None:
    ran: list[int] = []

    @qc.register_job
    class Count(quebec.BaseClass):
        def perform(self, n: int) -> None:
            ran.append(n)

    ids = [Count.set(priority=p).perform_later(n).id for n, p in ((1, 5), (2, 0), (3, 1), (4, 9))]
    batch = qc.drain_batch(3)
    assert [e.id for e in batch] == [ids[1], ids[2], ids[0]]
    assert count_rows(qc, "claimed_executions") == 3 and count_rows(qc, "ready_executions") == 1
    for execution in batch:
        execution.perform()
    assert ran == [2, 3, 1]
    with pytest.raises(RuntimeError, match="performed already"):
        batch[0].perform()
    assert ran == [2, 3, 1]
    rest = qc.drain_batch(10)
    assert [e.id for e in rest] == [ids[3]]
    rest[0].perform()
    assert qc.db.read(queries.state_counts).get(JobState.FINISHED) == 4


def test_a_due_scheduled_job_is_dispatched_and_drained(qc: Any) -> None:
    @qc.register_job
    class Soon(quebec.BaseClass):
        def perform(self) -> None:
            pass

    job = Soon.set(wait=0.2).perform_later()
    with pytest.raises(RuntimeError, match="No ready job"):
        qc.drain_one()
    deadline = time.monotonic() + 10
    while True:
        try:
            execution = qc.drain_one()
            break
        except RuntimeError:
            assert time.monotonic() < deadline, "the scheduled job was never drained"
            time.sleep(0.05)
    assert execution.id == job.id
    execution.perform()
    assert state(qc, job.id) == JobState.FINISHED


def test_perform_runs_callbacks_timeouts_and_discards_as_the_worker_does(qc: Any) -> None:
    steps: list[str] = []

    @qc.register_job
    class Hooked(quebec.BaseClass):
        def before_perform(self) -> None:
            steps.append("before")

        def around_perform(self) -> Any:
            steps.append("around-in")
            yield
            steps.append("around-out")

        def after_perform(self) -> None:
            steps.append("after")

        def perform(self) -> None:
            steps.append("perform")

    @qc.register_job
    class Slow(quebec.BaseClass):
        timeout = 0.2

        def perform(self) -> None:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                time.sleep(0.01)

    @qc.register_job
    class Dropped(quebec.BaseClass):
        discard_on = [KeyError]

        def perform(self) -> None:
            raise KeyError("gone")

    hooked, slow, dropped = Hooked.perform_later(), Slow.perform_later(), Dropped.perform_later()
    for execution in qc.drain_batch(3):
        execution.perform()
    assert steps == ["before", "around-in", "perform", "around-out", "after"]
    assert state(qc, hooked.id) == JobState.FINISHED
    assert qc.get_job(slow.id).error["exception_class"] == "JobTimeoutError"
    assert state(qc, dropped.id) == JobState.FINISHED


def test_inside_perform_the_job_sees_its_row_and_its_context(qc: Any) -> None:
    seen: dict[str, Any] = {}

    @qc.register_job
    class Inspect(quebec.BaseClass):
        queue_as = "inspect"

        def perform(self, n: int) -> None:
            seen.update(
                id=self.id,
                active_job_id=self.active_job_id,
                arguments=self.arguments,
                executions=self.executions,
                queue_name=self.queue_name,
                priority=self.priority,
                scheduled_at=self.scheduled_at,
                created_at=self.created_at,
                logger=self.logger,
                context=job_context_var.get(),
            )

    job = Inspect.set(priority=7).perform_later(41)
    assert job_context_var.get() == JobContext()
    qc.drain_one().perform()
    row = qc.get_job(job.id)
    assert (seen["id"], seen["active_job_id"], seen["queue_name"]) == (job.id, job.active_job_id, "inspect")
    assert (seen["priority"], seen["executions"]) == (7, 0)
    assert seen["arguments"] == job.arguments and json.loads(seen["arguments"])["arguments"] == [41]
    assert seen["scheduled_at"] == row.scheduled_at and seen["created_at"] == row.created_at
    assert isinstance(seen["logger"], logging.LoggerAdapter)
    assert seen["context"] == JobContext(
        jid=job.active_job_id, queue="inspect", target=__name__, job_id=job.id, job_class=Inspect.__qualname__
    )
    assert job_context_var.get() == JobContext()  # reset after the job
    assert Inspect.priority == 0  # the instance's priority did not leak into the class option


def test_a_rate_limit_holds_a_drained_job_back_as_it_does_on_a_worker(make_qc: Any) -> None:
    from cryptography.fernet import Fernet

    qc = make_qc(encryption_key=Fernet.generate_key().decode())

    @qc.register_job
    class Call(quebec.BaseClass):
        encrypt = True  # the key comes from the opened arguments
        rate_limit_max = 1
        rate_limit_duration = timedelta(seconds=60)

        def rate_limit_key(self, account: str) -> str:
            return account

        def perform(self, account: str) -> None:
            pass

    first, second = Call.perform_later("acme"), Call.perform_later("acme")
    for execution in qc.drain_batch(2):
        execution.perform()
    assert state(qc, first.id) == JobState.FINISHED
    assert state(qc, second.id) == JobState.SCHEDULED
