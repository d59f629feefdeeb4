"""Outcomes that are too big for a column still end the job, and never block the jobs behind them.

Before, on MySQL/MariaDB (`TEXT` columns: 64 KB) a 100 KB failure message, or arguments
near 64 KB whose failure counters pushed them over, raised `Data too long` in the
completer, which retried forever: every job finished afterwards stayed claimed.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

import quebec
from conftest import FAST, eventually
from quebec.store import queries
from quebec.store.error_record import ERROR_MAX_BYTES
from quebec.types import JobState

HUGE = 100_000
RS_PYTHON = os.environ.get("QUEBEC_RS_PYTHON", "")
requires_wheel = pytest.mark.skipif(
    not (RS_PYTHON and os.access(RS_PYTHON, os.X_OK)), reason="QUEBEC_RS_PYTHON does not name the wheel's python"
)


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


# Run by the wheel's python: create the tables, fail one job with a 100 KB message.
WHEEL_FAILS_A_JOB = """
import sys

import quebec

url, prefix = sys.argv[1:3]
qc = quebec.Quebec(url, table_name_prefix=prefix)
qc.create_tables()


class WheelFailure(quebec.BaseClass):
    def perform(self):
        raise ValueError("w" * 100_000)


qc.register_job(WheelFailure)
WheelFailure.perform_later()
qc.drain_one().perform()
"""


@pytest.mark.slow
@requires_wheel
def test_on_tables_the_wheel_created_a_huge_failure_fits_and_the_wheels_own_rows_read(
    db_url: str, prefix: str, tmp_path: Path
) -> None:
    script = tmp_path / "wheel_fails.py"
    script.write_text(WHEEL_FAILS_A_JOB, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the wheel's quebec, not ours
    with (tmp_path / "wheel.log").open("wb") as out:
        argv = [RS_PYTHON, str(script), db_url, prefix]
        done = subprocess.run(argv, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=60)
    assert done.returncode == 0, (tmp_path / "wheel.log").read_text(errors="replace")[-3000:]
    qc = quebec.Quebec(db_url, table_name_prefix=prefix, **FAST)
    try:
        (theirs,) = qc.db.read(queries.list_jobs, state=JobState.FAILED)
        # on MySQL the wheel cut its record at 65,535 bytes, mid-string: it reads as its text
        assert "wwwww" in theirs.error["message"]
        qc.register_job(HugeFailure)
        ours = HugeFailure.perform_later()
        qc.start(spawn=["worker"])
        eventually(lambda: qc.get_job(ours.id).state == JobState.FAILED)
        qc.stop()
        assert qc.get_job(ours.id).error["exception_class"] == "ValueError"
        assert _error_bytes(qc, ours.id) <= ERROR_MAX_BYTES
    finally:
        qc.close()
