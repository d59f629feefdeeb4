"""The job metrics recorder on its own: the bounded buffer, and measuring that never changes a job's outcome."""

from __future__ import annotations

import io
import logging
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from quebec.clock import FrozenClock
from quebec.engine import metrics_recording
from quebec.engine.metrics import JobMetrics, is_failure
from quebec.engine.metrics_recording import Memory, Recording
from quebec.engine.outcomes import Discarded, Failed, Finished, Outcome, Released, Retried
from quebec.types import ClaimedJob, ErrorInfo, NewJob

JOB = ClaimedJob(
    id=7,
    queue_name="default",
    class_name="Job",
    arguments=None,
    priority=0,
    active_job_id="abc",
    scheduled_at=None,
    concurrency_key=None,
)


def test_a_full_buffer_drops_rows_and_counts_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics_recording, "BUFFER_ROWS", 2)
    file = io.StringIO()
    # No writer thread: nothing drains the buffer, as when the disk is slower than the jobs.
    recording = Recording("mem.csv", 100, time.monotonic() + 60, file, lambda _: None, Memory())
    assert [recording.offer((n,)) for n in range(3)] == [True, True, True]
    assert (recording.accepted, recording.dropped) == (2, 1)
    recording.finish("stopped")
    recording._write_loop()  # writes what the buffer held, then returns
    assert recording.written == 2


def test_the_row_that_reaches_the_limit_says_so() -> None:
    recording = Recording("mem.csv", 2, time.monotonic() + 60, io.StringIO(), lambda _: None, Memory())
    assert [recording.offer((n,)) for n in range(2)] == [True, False]


def test_a_failing_measurement_leaves_the_outcome_alone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = JobMetrics(FrozenClock(), {})
    metrics.start(tmp_path / "m.csv")

    def broken(self: Memory) -> int:
        raise OSError("no /proc")

    monkeypatch.setattr(Memory, "rss_kb", broken)
    outcome = Finished(JOB.id)
    calls: list[ClaimedJob] = []

    def perform(job: ClaimedJob) -> Outcome:
        calls.append(job)
        return outcome

    with caplog.at_level(logging.ERROR, logger="quebec"):
        assert metrics.observe(perform, JOB, lambda: 1) is outcome
        assert metrics.observe(perform, JOB, lambda: 1) is outcome
    assert calls == [JOB, JOB]  # run once each, measured or not
    assert [r.getMessage() for r in caplog.records].count(
        "job_metrics.measure_failed: rows of jobs that hit this are skipped"
    ) == 1
    monkeypatch.undo()
    assert metrics.stop() == {"path": str(tmp_path / "m.csv"), "rows": 0, "dropped": 0}


def test_a_job_that_raises_past_the_executor_is_recorded_failed_and_the_error_goes_on(tmp_path: Path) -> None:
    metrics = JobMetrics(FrozenClock(), {})
    metrics.start(tmp_path / "m.csv")

    def perform(job: ClaimedJob) -> Any:
        raise SystemExit(3)

    with pytest.raises(SystemExit):
        metrics.observe(perform, JOB, lambda: 1)
    assert metrics.stop() is not None
    assert (tmp_path / "m.csv").read_text(encoding="utf-8").splitlines()[1].split(",")[6] == "failed"


def test_only_a_failed_outcome_counts_as_failed_as_in_the_wheel() -> None:
    error = ErrorInfo("ValueError", "no")
    assert is_failure(Failed(1, error=error))
    retry = NewJob("q", "J", "{}", 0, "a", datetime(2030, 1, 1))
    others = (Finished(1), Retried(1, next_run=retry), Discarded(1, error=error), Released(1), None)
    assert not any(is_failure(o) for o in others)
