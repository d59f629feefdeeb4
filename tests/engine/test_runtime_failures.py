"""The runtime keeps going: failing jobs land in failed, unknown classes fail, queue selectors hold."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import quebec
from conftest import eventually
from quebec.clock import utcnow
from quebec.store import jobs
from quebec.types import NewJob


def state(qc: quebec.Quebec, job_id: int | None) -> str | None:
    assert job_id is not None
    row = qc.get_job(job_id)
    return None if row is None else str(row.state)


def test_failing_job_lands_in_failed_with_its_error_and_the_worker_keeps_going(qc: quebec.Quebec) -> None:
    ran: list[int] = []

    @qc.register_job
    class Boom(quebec.BaseClass):
        def perform(self, n: int) -> None:
            raise ValueError(f"boom {n}")

    @qc.register_job
    class Fine(quebec.BaseClass):
        def perform(self, n: int) -> None:
            ran.append(n)

    bad = Boom.perform_later(1)
    qc.start(spawn=["worker"])
    eventually(lambda: state(qc, bad.id) == "failed")
    good = Fine.perform_later(2)
    eventually(lambda: state(qc, good.id) == "finished")
    assert ran == [2]
    row = qc.get_job(bad.id)  # type: ignore[arg-type]
    assert row.finished_at is None
    assert row.error["exception_class"] == "ValueError"
    assert row.error["message"] == "boom 1"
    backtrace = row.error["backtrace"]
    assert isinstance(backtrace, list) and all(isinstance(line, str) for line in backtrace)
    assert any("in perform" in line for line in backtrace)
    assert backtrace[-1] == "ValueError: boom 1"
    counters = json.loads(row.arguments)  # type: ignore[arg-type]
    assert (counters["executions"], counters["exception_executions"]) == (1, {"[ValueError]": 1})


def test_retried_failed_job_runs_again_and_counts_its_failures(qc: quebec.Quebec) -> None:
    runs: list[int] = []

    @qc.register_job
    class Flaky(quebec.BaseClass):
        def perform(self) -> None:
            runs.append(self.executions)
            raise RuntimeError("still broken")

    job = Flaky.perform_later()
    assert job.id is not None
    qc.start(spawn=["worker"])
    eventually(lambda: state(qc, job.id) == "failed")
    assert qc.retry_failed(job.id) is True
    eventually(lambda: len(runs) == 2 and state(qc, job.id) == "failed")
    assert runs == [0, 1]
    counters = json.loads(qc.get_job(job.id).arguments)  # type: ignore[union-attr, arg-type]
    assert (counters["executions"], counters["exception_executions"]) == (2, {"[RuntimeError]": 2})
    assert qc.retry_failed(job.id + 1000) is False
    assert qc.discard_failed(job.id) is True
    assert state(qc, job.id) == "finished"


def test_unknown_job_class_fails_with_unknown_job_class_and_the_worker_goes_on(qc: quebec.Quebec) -> None:
    ran: list[str] = []

    @qc.register_job
    class Known(quebec.BaseClass):
        def perform(self) -> None:
            ran.append("known")

    (nope,) = qc.db.transact(
        jobs.enqueue_many,
        [
            NewJob(
                queue_name="default",
                class_name="Nope",
                arguments=None,
                priority=0,
                active_job_id="nope00000001",
                scheduled_at=utcnow(),
            )
        ],
    )
    qc.start(spawn=["worker"])
    eventually(lambda: state(qc, nope.id) == "failed")
    known = Known.perform_later()
    eventually(lambda: state(qc, known.id) == "finished")
    assert ran == ["known"]
    error: dict[str, Any] = qc.get_job(nope.id).error  # type: ignore[union-attr]
    assert error["exception_class"] == "UnknownJobClass"
    assert "'Nope'" in error["message"]
    assert str(nope.id) in error["message"]


def test_worker_takes_only_queues_its_selector_matches(make_qc: Callable[..., quebec.Quebec]) -> None:
    qc = make_qc(queues=["critical", "mail*"])
    ran: list[str] = []

    @qc.register_job
    class Routed(quebec.BaseClass):
        def perform(self, queue: str) -> None:
            ran.append(queue)

    def enqueue(queue: str) -> int:
        job = Routed.set(queue=queue, priority=-10 if queue in skipped else 0).perform_later(queue)
        assert job.id is not None
        return job.id

    # The skipped ones go first with the best priority: a worker taking them would take them first.
    skipped = ("default", "mXail", "amail", "critical2", "mai")
    left = [enqueue(q) for q in skipped]
    taken = [enqueue(q) for q in ("critical", "mail", "mailers", "mail.digest")]
    qc.start(spawn=["worker"])
    eventually(lambda: all(state(qc, j) == "finished" for j in taken))
    assert sorted(ran) == sorted(["critical", "mail", "mailers", "mail.digest"])
    assert [state(qc, j) for j in left] == ["ready"] * len(skipped)


def test_job_with_unreadable_arguments_fails_and_the_worker_goes_on(qc: quebec.Quebec) -> None:
    ran: list[int] = []

    @qc.register_job
    class Reader(quebec.BaseClass):
        def perform(self, n: int) -> None:
            ran.append(n)

    (garbled,) = qc.db.transact(
        jobs.enqueue_many,
        [
            NewJob(
                queue_name="default",
                class_name=Reader.__qualname__,
                arguments="{not json",
                priority=0,
                active_job_id="garbled00001",
                scheduled_at=utcnow(),
            )
        ],
    )
    qc.start(spawn=["worker"])
    eventually(lambda: state(qc, garbled.id) == "failed")
    fine = Reader.perform_later(3)
    eventually(lambda: state(qc, fine.id) == "finished")
    assert ran == [3]
    assert qc.get_job(garbled.id).error["exception_class"]  # type: ignore[union-attr, index]
