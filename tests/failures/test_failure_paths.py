"""Retries, discard/rescue precedence, handlers, failed-job operations, cancel: on every backend."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import Any

import pytest

import quebec
from conftest import eventually
from quebec.clock import utcnow
from quebec.types import JobState


def _state(qc: Any, job_id: int) -> JobState | None:
    row = qc.get_job(job_id)
    return row.state if row else None


def _runs_of(qc: Any, active_job_id: str) -> list[Any]:
    from quebec.store import queries

    return [r for r in qc.db.read(queries.list_jobs, limit=1000) if r.active_job_id == active_job_id]


def test_seed_payment_retry_example_schedules_next_attempt_30s_later(qc: Any) -> None:
    notified: list[BaseException] = []

    def notify_admin(error: BaseException) -> None:
        notified.append(error)

    def process_payment(order_id: int) -> None:
        raise ConnectionError(f"gateway down for {order_id}")

    @qc.register_job
    class PaymentJob(quebec.BaseClass):
        retry_on = [
            quebec.RetryStrategy(
                (ConnectionError, TimeoutError),
                wait=timedelta(seconds=30),
                attempts=3,
            ),
            quebec.RetryStrategy(
                (ValueError,),
                wait=timedelta(seconds=5),
                attempts=1,
                # Called once retries are exhausted; receives (job, error).
                handler=lambda job, error: notify_admin(error),
            ),
        ]

        def perform(self, order_id: int) -> None:
            process_payment(order_id)

    job = PaymentJob.perform_later(7)
    qc.start(spawn=["worker"])
    runs = eventually(lambda: [r for r in _runs_of(qc, job.active_job_id) if r.state == JobState.SCHEDULED])
    qc.stop()
    retry = runs[0]
    assert _state(qc, job.id) == JobState.FINISHED  # the first run is done; a new row carries the retry
    delay = (retry.scheduled_at - utcnow()).total_seconds()
    assert 20 < delay <= 30 * 1.15 + 1
    envelope = json.loads(retry.arguments)
    assert envelope["executions"] == 1
    assert envelope["exception_executions"] == {"[ConnectionError, TimeoutError]": 1}
    assert retry.active_job_id == job.active_job_id


def test_seed_handler_runs_once_when_attempts_exhausted_and_job_is_not_failed(qc: Any) -> None:
    calls: list[tuple[Any, BaseException]] = []

    @qc.register_job
    class PaymentJob(quebec.BaseClass):
        retry_on = [
            quebec.RetryStrategy(
                (ValueError,),
                wait=timedelta(seconds=5),
                attempts=1,
                handler=lambda job, error: calls.append((job, error)),
            )
        ]

        def perform(self, order_id: int) -> None:
            raise ValueError(f"bad order {order_id}")

    job = PaymentJob.perform_later(9)
    qc.start(spawn=["worker"])
    eventually(lambda: _state(qc, job.id) == JobState.FINISHED)
    qc.stop()
    assert len(calls) == 1 and calls[0][0].id == job.id and str(calls[0][1]) == "bad order 9"
    assert qc.db.read(__import__("quebec.store.queries", fromlist=["x"]).state_counts)[JobState.FAILED] == 0


def test_attempts_three_runs_three_times_then_fails_with_counters(qc: Any) -> None:
    runs: list[int] = []

    @qc.register_job
    class Flaky(quebec.BaseClass):
        retry_on = [quebec.RetryStrategy(RuntimeError, wait=0, attempts=3, jitter=0)]

        def perform(self) -> None:
            runs.append(self.executions)
            raise RuntimeError("still broken")

    job = Flaky.perform_later()
    qc.start()
    failed = eventually(lambda: [r for r in _runs_of(qc, job.active_job_id) if r.state == JobState.FAILED])
    qc.stop()
    assert runs == [0, 1, 2]
    assert len(_runs_of(qc, job.active_job_id)) == 3
    row = failed[0]
    assert row.error["exception_class"] == "RuntimeError" and row.error["message"] == "still broken"
    assert any("still broken" in line for line in row.error["backtrace"])
    assert json.loads(row.arguments)["executions"] == 3
    assert row.finished_at is None


def test_discard_on_finishes_without_failure_and_calls_after_discard(qc: Any) -> None:
    seen: list[str] = []

    @qc.register_job
    class Gone(quebec.BaseClass):
        discard_on = [quebec.DiscardStrategy(KeyError, handler=lambda job, error: seen.append("handler"))]

        def after_discard(self) -> None:
            seen.append("after_discard")

        def perform(self) -> None:
            raise KeyError("record deleted")

    job = Gone.perform_later()
    qc.start(spawn=["worker"])
    eventually(lambda: _state(qc, job.id) == JobState.FINISHED)
    qc.stop()
    assert seen == ["handler", "after_discard"]


def test_rescue_handler_that_raises_fails_the_job_with_the_handlers_error(qc: Any) -> None:
    def broken(job: Any, error: BaseException) -> None:
        raise LookupError("handler broke")

    @qc.register_job
    class Rescued(quebec.BaseClass):
        rescue_from = [quebec.RescueStrategy(ValueError, handler=broken)]

        def perform(self) -> None:
            raise ValueError("original")

    job = Rescued.perform_later()
    qc.start(spawn=["worker"])
    eventually(lambda: _state(qc, job.id) == JobState.FAILED)
    qc.stop()
    assert qc.get_job(job.id).error["exception_class"] == "LookupError"


def test_arguments_that_no_longer_match_perform_fail_visibly(qc: Any) -> None:
    @qc.register_job
    class Changed(quebec.BaseClass):
        def perform(self, a: int) -> None:
            pass

    job = Changed.perform_later(1, 2, 3)
    qc.start(spawn=["worker"])
    eventually(lambda: _state(qc, job.id) == JobState.FAILED)
    qc.stop()
    error = qc.get_job(job.id).error
    assert error["exception_class"] == "TypeError" and "perform()" in error["message"]


def test_wait_callable_returning_nonsense_fails_the_job_instead_of_leaving_it_claimed(qc: Any) -> None:
    @qc.register_job
    class Odd(quebec.BaseClass):
        retry_on = [quebec.RetryStrategy(RuntimeError, wait=lambda n: "soon", attempts=3)]  # type: ignore[arg-type,return-value]

        def perform(self) -> None:
            raise RuntimeError("x")

    job = Odd.perform_later()
    qc.start(spawn=["worker"])
    eventually(lambda: _state(qc, job.id) == JobState.FAILED)
    qc.stop()
    assert "RetryStrategy wait(1)" in qc.get_job(job.id).error["message"]


def test_retry_and_discard_failed_jobs_one_and_all(qc: Any) -> None:
    fixed = threading.Event()

    @qc.register_job
    class Broken(quebec.BaseClass):
        def perform(self, n: int) -> None:
            if not fixed.is_set():
                raise RuntimeError(f"broken {n}")

    jobs = qc.perform_all_later([Broken.build(i) for i in range(4)])
    qc.start(spawn=["worker"])
    eventually(lambda: all(_state(qc, j.id) == JobState.FAILED for j in jobs))
    fixed.set()
    assert qc.retry_failed(jobs[0].id) is True
    assert qc.retry_failed(jobs[0].id) is False  # no longer failed
    eventually(lambda: _state(qc, jobs[0].id) == JobState.FINISHED)
    assert qc.discard_failed(jobs[1].id) is True
    assert qc.retry_all_failed() == 2
    eventually(lambda: all(_state(qc, j.id) == JobState.FINISHED for j in jobs))
    qc.stop()
    assert qc.discard_all_failed() == 0


def test_cancel_stops_a_job_that_has_not_started_but_not_a_finished_one(qc: Any) -> None:
    ran: list[int] = []

    @qc.register_job
    class Later(quebec.BaseClass):
        def perform(self, n: int) -> None:
            ran.append(n)

    scheduled = Later.set(wait=3600).perform_later(1)
    ready = Later.perform_later(2)
    assert qc.cancel(scheduled.id) is True
    assert qc.cancel(ready.id) is True
    assert _state(qc, scheduled.id) == JobState.FINISHED
    assert qc.cancel(ready.id) is False
    done = Later.perform_later(3)
    qc.start(spawn=["worker"])
    eventually(lambda: _state(qc, done.id) == JobState.FINISHED)
    qc.stop()
    assert ran == [3]


@pytest.mark.parametrize("hook", ["on_start", "on_worker_start", "on_worker_stop", "on_shutdown", "on_stop"])
def test_a_failing_lifecycle_hook_is_logged_by_name_and_the_worker_goes_on(
    make_qc: Any, hook: str, caplog: pytest.LogCaptureFixture
) -> None:
    qc = make_qc()

    def exploding() -> None:
        raise RuntimeError("hook boom")

    getattr(qc, hook)(exploding)

    @qc.register_job
    class Fine(quebec.BaseClass):
        def perform(self) -> None:
            pass

    job = Fine.perform_later()
    qc.start(spawn=["worker"])
    eventually(lambda: _state(qc, job.id) == JobState.FINISHED)
    qc.stop()
    assert any(f"{hook}:" in r.getMessage() and "exploding" in r.getMessage() for r in caplog.records)


def test_worker_hands_back_claims_it_holds_but_does_not_know_about(qc: Any) -> None:
    """A claim whose commit outcome was unknown (connection lost during COMMIT) must not
    stay claimed by a live process forever: reconcile() hands it back and it runs."""
    from quebec.store import ready
    from quebec.types import QueueSelector

    ran: list[int] = []

    @qc.register_job
    class Lost(quebec.BaseClass):
        def perform(self, n: int) -> None:
            ran.append(n)

    qc.quiet()  # it starts quiet, so that only our simulated claim can take the job (going quiet
    qc.start(spawn=["worker"])  # once running could race with a claim the worker had begun)
    worker = qc._runtime.workers[0]
    job = Lost.perform_later(5)
    pid = qc._runtime.process_ids()[0]
    claimed = qc.db.transact(ready.claim, queues=QueueSelector(), limit=1, process_id=pid)
    assert [c.id for c in claimed] == [job.id]
    assert worker.reconcile() == [job.id]
    assert _state(qc, job.id) == JobState.READY
    worker._quiet.clear()
    worker.wake_up()
    eventually(lambda: _state(qc, job.id) == JobState.FINISHED)
    qc.stop()
    assert ran == [5]


def test_per_job_callbacks_run_in_order_and_errors_are_handled_by_kind(qc: Any) -> None:
    order: list[str] = []

    @qc.register_job
    class Wrapped(quebec.BaseClass):
        def before_perform(self) -> None:
            order.append("before")

        def around_perform(self) -> Any:
            order.append("around-in")
            yield
            order.append("around-out")

        def after_perform(self) -> None:
            order.append("after")
            raise RuntimeError("after_perform is logged, the job stays finished")

        def perform(self) -> None:
            order.append("perform")

    @qc.register_job
    class Guarded(quebec.BaseClass):
        def before_perform(self) -> None:
            raise PermissionError("not allowed")

        def perform(self) -> None:
            order.append("guarded ran")

    @qc.register_job
    class Skipped(quebec.BaseClass):
        def around_perform(self) -> Any:
            if False:
                yield

        def perform(self) -> None:
            order.append("skipped ran")

    a, b, c = Wrapped.perform_later(), Guarded.perform_later(), Skipped.perform_later()
    qc.start(spawn=["worker"])
    eventually(
        lambda: (
            _state(qc, a.id) == JobState.FINISHED
            and _state(qc, b.id) == JobState.FAILED
            and _state(qc, c.id) == JobState.FINISHED
        )
    )
    qc.stop()
    assert order == ["before", "around-in", "perform", "around-out", "after"]
    assert qc.get_job(b.id).error["exception_class"] == "PermissionError"


def test_job_past_its_timeout_fails_with_a_timeout_error(qc: Any) -> None:
    import time

    @qc.register_job
    class Sleepy(quebec.BaseClass):
        timeout = 0.2

        def perform(self) -> None:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                time.sleep(0.01)

    job = Sleepy.perform_later()
    qc.start(spawn=["worker"])
    eventually(lambda: _state(qc, job.id) == JobState.FAILED)
    qc.stop()
    error = qc.get_job(job.id).error
    assert error["exception_class"] == "JobTimeoutError" and "timeout of 0.2s" in error["message"]
