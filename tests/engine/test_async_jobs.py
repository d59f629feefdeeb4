"""`async def perform` and async callbacks run to completion, on a worker thread and in a drain.

A coroutine is awaited on the job's own event loop; what it raises goes through
retry_on / discard_on / rescue_from like a sync error; `timeout` cancels it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import quebec
from api.api_support import state
from conftest import eventually
from quebec.context import job_context_var
from quebec.retry import RetryStrategy
from quebec.store import queries
from quebec.types import JobState


class Flaky(Exception):
    pass


def test_an_async_perform_runs_to_completion_on_a_worker(qc: Any) -> None:
    spans: list[tuple[float, float, Any]] = []

    @qc.register_job
    class Nap(quebec.BaseClass):
        async def perform(self, seconds: float) -> None:  # type: ignore[override]
            started = time.monotonic()
            await asyncio.sleep(seconds)
            spans.append((started, time.monotonic(), job_context_var.get().job_id))

    job = Nap.perform_later(0.2)
    qc.start(spawn=["worker"])
    eventually(lambda: state(qc, job.id) == JobState.FINISHED)
    qc.stop()
    [(started, ended, job_id)] = spans
    assert ended - started >= 0.2 and job_id == job.id


def test_an_async_perform_that_raises_is_retried_then_failed_with_its_own_class(make_qc: Any) -> None:
    qc = make_qc()
    runs: list[int] = []

    @qc.register_job
    class Unlucky(quebec.BaseClass):
        retry_on = [RetryStrategy((Flaky,), wait=0, attempts=3)]

        async def perform(self) -> None:  # type: ignore[override]
            await asyncio.sleep(0)
            runs.append(self.executions)
            raise Flaky("still unlucky")

    Unlucky.perform_later()
    qc.start(spawn=["worker", "dispatcher"])
    eventually(lambda: qc.db.read(queries.state_counts).get(JobState.FAILED, 0) == 1, within=20)
    qc.stop()
    assert runs == [0, 1, 2]
    [failed] = qc.db.read(queries.list_jobs, state=JobState.FAILED, limit=10)
    assert (failed.error["exception_class"], failed.error["message"]) == ("Flaky", "still unlucky")


def test_async_callbacks_share_the_jobs_loop_and_run_in_order(qc: Any) -> None:
    steps: list[str] = []

    @qc.register_job
    class Hooked(quebec.BaseClass):
        async def before_perform(self) -> None:
            await asyncio.sleep(0)
            self.loop = asyncio.get_running_loop()
            steps.append("before")

        async def around_perform(self) -> Any:
            steps.append("around-in")
            yield
            steps.append("around-out")

        async def perform(self) -> None:  # type: ignore[override]
            assert asyncio.get_running_loop() is self.loop
            steps.append("perform")

        async def after_perform(self) -> None:
            steps.append("after")

    job = Hooked.perform_later()
    qc.drain_one().perform()
    assert steps == ["before", "around-in", "perform", "around-out", "after"]
    assert state(qc, job.id) == JobState.FINISHED


def test_an_async_around_perform_can_swallow_the_error(qc: Any) -> None:
    @qc.register_job
    class Guarded(quebec.BaseClass):
        async def around_perform(self) -> Any:
            with contextlib.suppress(Flaky):
                yield

        async def perform(self) -> None:  # type: ignore[override]
            raise Flaky("handled by around_perform")

    job = Guarded.perform_later()
    qc.drain_one().perform()
    assert state(qc, job.id) == JobState.FINISHED


def test_timeout_cancels_a_coroutine_and_a_timeouterror_of_the_job_stays_its_own(qc: Any) -> None:
    cancelled: list[bool] = []

    @qc.register_job
    class Sleepy(quebec.BaseClass):
        timeout = 0.2

        async def perform(self) -> None:  # type: ignore[override]
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cancelled.append(True)
                raise

    @qc.register_job
    class OwnTimeout(quebec.BaseClass):
        timeout = 30

        async def perform(self) -> None:  # type: ignore[override]
            raise TimeoutError("the API timed out")

    sleepy, own = Sleepy.perform_later(), OwnTimeout.perform_later()
    started = time.monotonic()
    for execution in qc.drain_batch(2):
        execution.perform()
    assert time.monotonic() - started < 10
    assert cancelled == [True]
    assert qc.get_job(sleepy.id).error["exception_class"] == "JobTimeoutError"
    assert qc.get_job(own.id).error["exception_class"] == "TimeoutError"


def test_a_sync_perform_that_returns_a_coroutine_is_awaited_and_discard_on_applies(qc: Any) -> None:
    ran: list[str] = []

    async def body() -> None:
        ran.append("awaited")
        raise KeyError("gone")

    @qc.register_job
    class Wrapped(quebec.BaseClass):
        discard_on = [KeyError]

        def perform(self) -> Any:
            return body()

    job = Wrapped.perform_later()
    qc.drain_one().perform()
    assert ran == ["awaited"]
    row = qc.get_job(job.id)
    assert row.state == JobState.FINISHED and row.error is None


def test_tasks_a_job_leaves_behind_are_cancelled_with_its_loop(qc: Any) -> None:
    outcome: list[str] = []

    @qc.register_job
    class Leaky(quebec.BaseClass):
        async def perform(self) -> None:  # type: ignore[override]
            async def forever() -> None:
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    outcome.append("cancelled")
                    raise

            self.task = asyncio.get_running_loop().create_task(forever())
            await asyncio.sleep(0)

    Leaky.perform_later()
    qc.drain_one().perform()
    assert outcome == ["cancelled"]


def test_execution_perform_works_inside_a_running_event_loop(qc: Any) -> None:
    seen: list[Any] = []

    @qc.register_job
    class Inner(quebec.BaseClass):
        async def perform(self) -> None:  # type: ignore[override]
            await asyncio.sleep(0.01)
            seen.append(job_context_var.get().job_id)

    job = Inner.perform_later()

    async def an_async_test() -> None:
        qc.drain_one().perform()

    asyncio.run(an_async_test())
    assert seen == [job.id]
    assert state(qc, job.id) == JobState.FINISHED
