"""Every way out of perform ends in an outcome, BaseExceptions too: no claim is left behind.

Before, sys.exit(), KeyboardInterrupt, CancelledError (and GeneratorExit from an
around_perform) escaped the executor: the lane logged `lane.perform_crashed` and the
job stayed claimed by a live worker forever.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from typing import Any

import quebec
from conftest import eventually
from quebec.store import queries
from quebec.types import JobState


def _states(qc: Any, jobs: dict[str, Any]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name, job in jobs.items():
        row = qc.get_job(job.id)
        out[name] = None if row is None else str(row.state)
    return out


def _error_class(qc: Any, job: Any) -> str | None:
    row = qc.get_job(job.id)
    return None if row is None or row.error is None else str(row.error["exception_class"])


def test_base_exceptions_in_perform_or_around_perform_fail_the_job_and_the_worker_goes_on(qc: Any) -> None:
    @qc.register_job
    class Exits(quebec.BaseClass):
        def perform(self) -> None:
            sys.exit(3)

    @qc.register_job
    class Interrupted(quebec.BaseClass):
        def perform(self) -> None:
            raise KeyboardInterrupt

    @qc.register_job
    class Cancelled(quebec.BaseClass):
        def perform(self) -> None:
            raise asyncio.CancelledError("task cancelled")

    @qc.register_job
    class AroundExits(quebec.BaseClass):
        def around_perform(self) -> Iterator[None]:
            yield
            raise GeneratorExit("around_perform gave up")

        def perform(self) -> None:
            pass

    @qc.register_job
    class SysExitBeforePerform(quebec.BaseClass):
        def before_perform(self) -> None:
            raise SystemExit("not today")

        def perform(self) -> None:
            pass

    @qc.register_job
    class Fine(quebec.BaseClass):
        def perform(self) -> None:
            pass

    jobs = {
        "exit": Exits.perform_later(),
        "interrupt": Interrupted.perform_later(),
        "cancelled": Cancelled.perform_later(),
        "around": AroundExits.perform_later(),
        "before": SysExitBeforePerform.perform_later(),
    }
    qc.start(spawn=["worker"])
    eventually(lambda: set(_states(qc, jobs).values()) == {"failed"}, within=15)
    later = [Fine.perform_later() for _ in range(3)]  # the worker is still running jobs
    eventually(lambda: all(qc.get_job(j.id).state == JobState.FINISHED for j in later))
    qc.stop()
    assert {name: _error_class(qc, job) for name, job in jobs.items()} == {
        "exit": "SystemExit",
        "interrupt": "KeyboardInterrupt",
        "cancelled": "CancelledError",
        "around": "GeneratorExit",
        "before": "SystemExit",
    }
    assert qc.get_job(jobs["cancelled"].id).error["message"] == "task cancelled"
    counters = json.loads(qc.get_job(jobs["exit"].id).arguments)
    assert counters["exception_executions"] == {"[SystemExit]": 1}
    assert qc.db.read(queries.state_counts).get(JobState.CLAIMED, 0) == 0


def test_a_retry_strategy_naming_a_base_exception_retries_it(qc: Any) -> None:
    runs: list[int] = []

    @qc.register_job
    class Interruptible(quebec.BaseClass):
        retry_on = [quebec.RetryStrategy((KeyboardInterrupt,), wait=0, attempts=3)]

        def perform(self) -> None:
            runs.append(self.executions)
            if len(runs) < 3:
                raise KeyboardInterrupt

    job = Interruptible.perform_later()
    qc.start(spawn=["worker"])
    eventually(lambda: len(runs) == 3 and qc.db.read(queries.state_counts).get(JobState.FINISHED, 0) == 3)
    qc.stop()
    assert runs == [0, 1, 2]
    assert qc.get_job(job.id).state == JobState.FINISHED
    assert qc.db.read(queries.state_counts).get(JobState.FAILED, 0) == 0


def test_an_exception_whose_str_raises_still_fails_the_job_with_its_class(qc: Any) -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no str for you")

    @qc.register_job
    class Odd(quebec.BaseClass):
        def perform(self) -> None:
            raise Unprintable

    job = Odd.perform_later()
    qc.start(spawn=["worker"])
    eventually(lambda: qc.get_job(job.id).state == JobState.FAILED)
    qc.stop()
    error = qc.get_job(job.id).error
    assert error["exception_class"] == "Unprintable" and "str() raised" in error["message"]
