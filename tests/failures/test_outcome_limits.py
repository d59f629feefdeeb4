"""Outcomes that are too big for a column still end the job, and never block the jobs behind them.

Before, on MySQL/MariaDB (`TEXT` columns: 64 KB) a 100 KB failure message, or arguments
near 64 KB whose failure counters pushed them over, raised `Data too long` in the
completer, which retried forever: every job finished afterwards stayed claimed.
"""

from __future__ import annotations

import json
from typing import Any

import quebec
from conftest import eventually
from quebec.store import queries
from quebec.store.error_record import ERROR_MAX_BYTES
from quebec.types import JobState

HUGE = 100_000


class HugeFailure(quebec.BaseClass):
    def perform(self) -> None:
        raise ValueError("é" + "x" * HUGE)


class FailsWithItsArguments(quebec.BaseClass):
    def perform(self, payload: str) -> None:
        raise RuntimeError(f"cannot handle {len(payload)} bytes")


class Fine(quebec.BaseClass):
    def perform(self, n: int) -> None:
        pass


def _error_bytes(qc: Any, job_id: int) -> int:
    from sqlalchemy import select

    failed = qc.db.tables.failed_executions
    with qc.db.engine.connect() as conn:
        return len(conn.execute(select(failed.c.error).where(failed.c.job_id == job_id)).scalar_one().encode())


def test_a_huge_failure_and_large_arguments_that_then_fail_leave_the_job_failed_and_later_jobs_finished(
    qc: Any,
) -> None:
    for cls in (HugeFailure, FailsWithItsArguments, Fine):
        qc.register_job(cls)
    probe = FailsWithItsArguments.set(wait=3600).perform_later("")
    shell = len(qc.get_job(probe.id).arguments.encode())
    assert qc.cancel(probe.id)
    huge = HugeFailure.perform_later()
    # 65,530 bytes as enqueued: it fits a TEXT column; its failure counters (+20) do not
    size = 65_530 - shell
    large = FailsWithItsArguments.perform_later("a" * size)
    later = [Fine.perform_later(n) for n in range(20)]
    qc.start(spawn=["worker"])
    eventually(lambda: all(qc.get_job(j.id).state == JobState.FINISHED for j in later), within=15)
    eventually(lambda: {qc.get_job(j.id).state for j in (huge, large)} == {JobState.FAILED})
    qc.stop()
    assert qc.db.read(queries.state_counts).get(JobState.CLAIMED, 0) == 0

    error = qc.get_job(huge.id).error
    assert error["exception_class"] == "ValueError"
    assert error["message"].startswith("éxxx") and error["message"].endswith(f"[cut: {HUGE + 1} characters in all]")
    assert error["backtrace"][-1].startswith("ValueError: éxxx")
    assert _error_bytes(qc, huge.id) <= ERROR_MAX_BYTES

    row = qc.get_job(large.id)
    assert row.error["message"] == f"cannot handle {size} bytes"
    envelope = json.loads(row.arguments)
    assert envelope["exception_executions"] == {"[RuntimeError]": 1}
    assert len(row.arguments.encode()) > 65_535  # more than a TEXT column holds
