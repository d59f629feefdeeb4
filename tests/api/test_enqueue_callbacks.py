"""before_enqueue / around_enqueue / after_enqueue on a job class, on every backend."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from api_support import count_rows

import quebec
from quebec.errors import ConfigError


def test_callbacks_run_in_order_around_the_insert_and_self_shows_the_row(qc: Any) -> None:
    seen: list[tuple[str, Any]] = []

    @qc.register_job
    class Audited(quebec.BaseClass):
        queue_as = "audit"
        priority = 4

        def before_enqueue(self) -> None:
            seen.append(("before", dict(vars(self)), count_rows(qc)))

        def around_enqueue(self) -> Any:
            seen.append(("around-before", self.id, count_rows(qc)))
            yield
            seen.append(("around-after", self.id, count_rows(qc)))

        def after_enqueue(self) -> None:
            seen.append(("after", self.id, count_rows(qc)))

        def perform(self, n: int, *, tag: str) -> None:
            pass

    job = Audited.perform_later(7, tag="x")
    assert job.id is not None and count_rows(qc) == 1
    assert [step for step, *_ in seen] == ["before", "around-before", "around-after", "after"]
    before = seen[0][1]
    assert seen[0][2] == 0 and seen[1][1:] == (None, 0)  # nothing inserted before the yield
    assert seen[2][1:] == (job.id, 1) and seen[3][1:] == (job.id, 1)
    assert before["id"] is None and before["active_job_id"] == job.active_job_id
    assert (before["queue_name"], before["priority"], before["executions"]) == ("audit", 4, 0)
    assert before["scheduled_at"] == job.scheduled_at and before["class_name"] == job.class_name
    assert job.envelope == qc.get_job(job.id).arguments  # the column as stored
    assert before["arguments"] == job.arguments  # its arguments object, as the wheel shows it
    assert json.loads(before["arguments"])["arguments"] == [7, {"_quebec_kwargs": True, "tag": "x"}]
    assert before["batch_id"] is None and before["concurrency_on_conflict"] is quebec.ConcurrencyConflict.Block


def test_abort_enqueue_in_before_enqueue_inserts_nothing_on_every_path(qc: Any) -> None:
    after: list[int] = []

    @qc.register_job
    class Refused(quebec.BaseClass):
        def before_enqueue(self) -> None:
            raise quebec.AbortEnqueue("not today")

        def after_enqueue(self) -> None:
            after.append(1)

        def perform(self, n: int = 0) -> None:
            pass

    for job in (Refused.perform_later(1), qc.perform_later(Refused, 2), Refused.set(queue="other").perform_later(3)):
        assert job.id is None and job.state is None
        assert job.active_job_id and job.arguments  # planned, as the wheel shows it, but not inserted
    assert count_rows(qc) == 0 and count_rows(qc, "ready_executions") == 0 and after == []


def test_around_enqueue_that_aborts_or_does_not_yield_inserts_nothing(qc: Any) -> None:
    @qc.register_job
    class Raises(quebec.BaseClass):
        def around_enqueue(self) -> Any:
            raise quebec.AbortEnqueue()
            yield

        def perform(self) -> None:
            pass

    @qc.register_job
    class Returns(quebec.BaseClass):
        def around_enqueue(self) -> Any:
            if self.priority >= 0:
                return
            yield

        def perform(self) -> None:
            pass

    assert Raises.perform_later().id is None
    assert Returns.perform_later().id is None
    assert count_rows(qc) == 0


def test_an_error_before_the_insert_propagates_and_inserts_nothing(qc: Any) -> None:
    @qc.register_job
    class Broken(quebec.BaseClass):
        def before_enqueue(self) -> None:
            raise RuntimeError("no quota")

        def perform(self) -> None:
            pass

    with pytest.raises(RuntimeError, match="no quota"):
        Broken.perform_later()
    assert count_rows(qc) == 0


def test_an_error_after_the_insert_is_logged_and_the_job_stays_enqueued(
    qc: Any, caplog: pytest.LogCaptureFixture
) -> None:
    @qc.register_job
    class LateFailure(quebec.BaseClass):
        def around_enqueue(self) -> Any:
            yield
            raise RuntimeError("around broke")

        def after_enqueue(self) -> None:
            raise RuntimeError("after broke")

        def perform(self) -> None:
            pass

    with caplog.at_level(logging.ERROR, logger="quebec.enqueue"):
        job = LateFailure.perform_later()
    assert job.id is not None and count_rows(qc) == 1
    assert "LateFailure.around_enqueue" in caplog.text and "LateFailure.after_enqueue" in caplog.text
    assert "around broke" in caplog.text and "after broke" in caplog.text


def test_around_enqueue_that_yields_twice_is_cut_short_with_a_warning(
    qc: Any, caplog: pytest.LogCaptureFixture
) -> None:
    steps: list[str] = []

    @qc.register_job
    class Greedy(quebec.BaseClass):
        def around_enqueue(self) -> Any:
            yield
            steps.append("after first yield")
            yield
            steps.append("never")

        def perform(self) -> None:
            pass

    with caplog.at_level(logging.WARNING, logger="quebec.enqueue"):
        assert Greedy.perform_later().id is not None
    assert steps == ["after first yield"] and "yielded more than once" in caplog.text


def test_a_callback_that_changes_the_planned_queue_is_refused_before_the_insert(qc: Any) -> None:
    @qc.register_job
    class Mover(quebec.BaseClass):
        def before_enqueue(self) -> None:
            self.queue_name = "elsewhere"

        def perform(self) -> None:
            pass

    with pytest.raises(quebec.EnqueueError, match=r"self\.queue_name.*Mover\.set\(queue=\.\.\.\)"):
        Mover.perform_later()
    assert count_rows(qc) == 0


def test_perform_all_later_runs_no_enqueue_callbacks(qc: Any) -> None:
    calls: list[str] = []

    @qc.register_job
    class Bulk(quebec.BaseClass):
        def before_enqueue(self) -> None:
            calls.append("before")
            raise quebec.AbortEnqueue()

        def perform(self, n: int) -> None:
            pass

    jobs = qc.perform_all_later([Bulk.build(1), Bulk.build(2)])
    assert all(j.id is not None for j in jobs) and count_rows(qc) == 2 and calls == []


def test_callbacks_that_cannot_run_are_refused_when_the_class_is_defined() -> None:
    with pytest.raises(ConfigError, match="around_enqueue must be a generator function"):

        class NotAGenerator(quebec.BaseClass):
            def around_enqueue(self) -> None:
                pass

    with pytest.raises(ConfigError, match="before_enqueue yields"):

        class YieldingBefore(quebec.BaseClass):
            def before_enqueue(self) -> Any:
                yield

    with pytest.raises(ConfigError, match="after_enqueue must be a method"):

        class NotCallable(quebec.BaseClass):
            after_enqueue = 3
