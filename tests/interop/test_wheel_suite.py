"""A job test suite written against the wheel runs unchanged on ours.

One script, written for quebec 0.4.2's API (enqueue, before_enqueue/AbortEnqueue,
drain_one, Execution.perform, the empty-queue RuntimeError), runs under the wheel's
interpreter and under ours, each against fresh tables; the harness then reads both
databases with plain SQL and asserts the same rows: the greeting finished, the broken
job failed with its ValueError, the flaky job finished with one retry scheduled a
minute out, the aborted enqueue inserted nothing, and no claim left behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from conftest import drop_prefix

pytestmark = pytest.mark.slow

RS_PYTHON = os.environ.get("QUEBEC_RS_PYTHON", "")
requires_wheel = pytest.mark.skipif(
    not (RS_PYTHON and os.path.isfile(RS_PYTHON) and os.access(RS_PYTHON, os.X_OK)),
    reason="QUEBEC_RS_PYTHON does not name the python of a venv with quebec==0.4.2 (and structlog)",
)

SUITE = """
import datetime
import json
import sys

import quebec

url, prefix, out = sys.argv[1:4]
qc = quebec.Quebec(url, table_name_prefix=prefix)
qc.create_tables()
seen = {}


class Greet(quebec.BaseClass):
    def perform(self, name, punctuation="!"):
        seen["greet"] = {"id": self.id, "queue": self.queue_name, "text": "Hello " + name + punctuation}


class Broken(quebec.BaseClass):
    def perform(self):
        raise ValueError("broken on purpose")


class Flaky(quebec.BaseClass):
    retry_on = [
        quebec.RetryStrategy((ConnectionError,), wait=datetime.timedelta(seconds=60), attempts=3, handler=None)
    ]

    def perform(self):
        raise ConnectionError("flaky on purpose")


class Vetoed(quebec.BaseClass):
    def before_enqueue(self):
        raise quebec.AbortEnqueue("not today")

    def perform(self):
        seen["vetoed"] = True


for job_class in (Greet, Broken, Flaky, Vetoed):
    qc.register_job(job_class)

try:
    qc.drain_one()
    empty = None
except RuntimeError as exc:
    empty = str(exc)

result = {"empty": empty}
result["greet"] = Greet.perform_later(qc, "Ada", punctuation="?").id
execution = qc.drain_one()
result["drained"] = [execution.id, execution.queue, execution.class_name, execution.jid]
execution.perform()
result["broken"] = Broken.perform_later(qc).id
qc.drain_one().perform()
result["flaky"] = Flaky.perform_later(qc).id
qc.drain_one().perform()
result["vetoed"] = Vetoed.perform_later(qc).id
result["seen"] = seen
with open(out, "w", encoding="utf-8") as f:
    json.dump(result, f)
"""

INTERPRETERS = ["ours", "wheel"]


@pytest.fixture
def wheel_prefix(db_url: str, prefix: str) -> Iterator[str]:
    """A second prefix on the same database, for the wheel's run (its tables dropped afterwards)."""
    other = prefix + "w"
    yield other
    drop_prefix(db_url, other)


def _rows(engine: Engine, sql: str) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql)))


def _instant(value: datetime | str) -> datetime:
    """A DATETIME column as read with plain SQL (SQLite gives text)."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _run_suite(python: str, db_url: str, prefix: str, tmp_path: Path) -> dict[str, Any]:
    script = tmp_path / "suite.py"
    script.write_text(textwrap.dedent(SUITE), encoding="utf-8")
    out = tmp_path / f"result-{prefix}.json"
    # Neither side may see our source tree through PYTHONPATH, nor the test run's QUEBEC_* settings.
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUEBEC_") and k != "PYTHONPATH"}
    done = subprocess.run(
        [python, str(script), db_url, prefix, str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return result


def _assert_tables(engine: Engine, prefix: str, result: dict[str, Any]) -> None:
    greet, broken, flaky = result["greet"], result["broken"], result["flaky"]
    assert result["empty"] is not None and result["empty"].startswith("No ready job to claim"), result
    assert result["drained"][:3] == [greet, "default", "Greet"], result
    assert result["seen"] == {"greet": {"id": greet, "queue": "default", "text": "Hello Ada?"}}, result
    assert result["vetoed"] is None, "AbortEnqueue in before_enqueue must leave the job without an id"

    jobs = {r.id: r for r in _rows(engine, f"SELECT id, class_name, active_job_id, finished_at FROM {prefix}_jobs")}
    assert "Vetoed" not in {r.class_name for r in jobs.values()}, "an aborted enqueue inserted a row"
    assert jobs[greet].finished_at is not None
    assert result["drained"][3] == jobs[greet].active_job_id

    failed = _rows(engine, f"SELECT job_id, error FROM {prefix}_failed_executions")
    assert [r.job_id for r in failed] == [broken], failed
    error = json.loads(failed[0].error)
    assert (error["exception_class"], error["message"]) == ("ValueError", "broken on purpose")
    assert jobs[broken].finished_at is None

    assert jobs[flaky].finished_at is not None, "the attempt that raised is finished; its retry is a new row"
    retries = [r for r in jobs.values() if r.class_name == "Flaky" and r.id != flaky]
    assert len(retries) == 1 and retries[0].active_job_id == jobs[flaky].active_job_id, retries
    scheduled = _rows(engine, f"SELECT job_id, scheduled_at, created_at FROM {prefix}_scheduled_executions")
    assert [r.job_id for r in scheduled] == [retries[0].id], scheduled
    delay = _instant(scheduled[0].scheduled_at) - _instant(scheduled[0].created_at)
    assert timedelta(seconds=59) <= delay <= timedelta(seconds=70), delay  # 60 s plus up to 15% jitter

    for table in ("claimed_executions", "ready_executions", "blocked_executions"):
        assert _rows(engine, f"SELECT job_id FROM {prefix}_{table}") == [], table


@requires_wheel
def test_a_suite_written_for_the_wheel_leaves_the_same_rows_on_ours_and_on_the_wheel(
    db_url: str, prefix: str, wheel_prefix: str, tmp_path: Path, engine: Engine
) -> None:
    for python, table_prefix in ((sys.executable, prefix), (RS_PYTHON, wheel_prefix)):
        result = _run_suite(python, db_url, table_prefix, tmp_path)
        try:
            _assert_tables(engine, table_prefix, result)
        except AssertionError as exc:
            raise AssertionError(f"under {python}: {exc}") from exc
