"""Job-class API on every backend: qc.perform_later, descriptors in perform_all_later, and
handlers and registered rescue strategies as a worker runs them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from api_support import count_rows, state

import quebec
from conftest import eventually
from quebec.types import JobState


def test_qc_perform_later_enqueues_on_that_instance_even_for_an_unregistered_class(qc: Any) -> None:
    class Unregistered(quebec.BaseClass):
        def perform(self, n: int, *, tag: str) -> None:
            pass

    job = qc.perform_later(Unregistered, 5, tag="t")
    row = qc.get_job(job.id)
    assert isinstance(job, quebec.ActiveJob) and row.state == JobState.READY
    assert json.loads(row.arguments)["arguments"]["arguments"] == [5, {"_quebec_kwargs": True, "tag": "t"}]
    assert job.envelope == row.arguments
    with pytest.raises(quebec.EnqueueError, match="takes a job class"):
        qc.perform_later("Unregistered", 1)
    assert count_rows(qc) == 1


def test_perform_all_later_takes_built_jobs_and_hand_made_descriptors(qc: Any) -> None:
    @qc.register_job
    class Mixed(quebec.BaseClass):
        def perform(self, n: int) -> None:
            pass

    built = Mixed.set(priority=3).build(1)
    by_hand = quebec.JobDescriptor(Mixed, (2,), {}, {"queue": "made", "priority": 7})
    jobs = qc.perform_all_later([built, by_hand])
    assert [j.id is not None for j in jobs] == [True, True] and jobs[0] is built
    rows = [qc.get_job(j.id) for j in jobs]
    assert [(r.queue_name, r.priority) for r in rows] == [("default", 3), ("made", 7)]
    assert all(j.envelope == r.arguments for j, r in zip(jobs, rows, strict=True))
    with pytest.raises(quebec.EnqueueError, match="must be a quebec.BaseClass subclass"):
        qc.perform_all_later([quebec.JobDescriptor(int, (), {}, {})])  # type: ignore[arg-type]
    with pytest.raises(quebec.EnqueueError, match="options must be a dict of set"):
        qc.perform_all_later([quebec.JobDescriptor(Mixed, (), {}, ["queue"])])  # type: ignore[arg-type]
    with pytest.raises(quebec.EnqueueError, match="Job.build"):
        qc.perform_all_later([built, 3])
    assert count_rows(qc) == 2


def test_handlers_of_either_arity_and_registered_rescues_run_in_the_worker(qc: Any) -> None:
    calls: dict[str, Any] = {}

    class Rescued(quebec.BaseClass):
        """A base whose registered strategy its subclasses get, and no other class."""

    Rescued.register_rescue_strategy(quebec.RescueStrategy(KeyError, lambda job, exc: calls.update(base=job.id)))

    @qc.register_job
    class ErrorOnly(quebec.BaseClass):
        discard_on = [quebec.DiscardStrategy(ValueError, handler=lambda exc: calls.update(error_only=str(exc)))]

        def perform(self) -> None:
            raise ValueError("bad value")

    @qc.register_job
    class Exhausted(quebec.BaseClass):
        retry_on = [quebec.RetryStrategy(TimeoutError, wait=0, attempts=1, handler=lambda exc: calls.update(ex=exc))]

        def perform(self) -> None:
            raise TimeoutError("slow")

    @qc.register_job
    class Inherits(Rescued):
        def perform(self) -> None:
            raise KeyError("missing")

    @qc.register_job
    class Unrelated(quebec.BaseClass):
        def perform(self) -> None:
            raise KeyError("missing")

    jobs = [cls.perform_later() for cls in (ErrorOnly, Exhausted, Inherits, Unrelated)]
    qc.start(spawn=["worker"])
    eventually(lambda: all(state(qc, j.id) in (JobState.FINISHED, JobState.FAILED) for j in jobs))
    qc.stop()
    assert [state(qc, j.id) for j in jobs] == [JobState.FINISHED] * 3 + [JobState.FAILED]
    assert calls["error_only"] == "bad value" and isinstance(calls["ex"], TimeoutError)
    assert calls["base"] == jobs[2].id
