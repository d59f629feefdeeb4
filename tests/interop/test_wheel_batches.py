"""Batches shared with the Rust wheel on one database, both ways.

(a) the wheel creates a batch (three jobs, one failing; on_success, on_failure and
on_finish callbacks) and our worker runs it; (b) we create it and the wheel's worker runs
it. Either way the batch ends failed with the counters Solid Queue gives (2 completed,
1 failed), the on_failure and on_finish callbacks run once each and see the finished
batch, and no tracking row is left.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import test_rust_wheel as wheel
from sqlalchemy.engine import Engine

pytestmark = [pytest.mark.slow, wheel.requires_wheel]
procs = wheel.procs  # the fixture; `engine` comes from conftest

JOB_PACKAGE = """
import json
import os

import quebec


def _record(entry):
    with open(os.environ["QUEBEC_TEST_RECORDS"], "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\\n")


class BatchWork(quebec.BaseClass):
    def perform(self, how):
        batch = self.batch
        _record({"kind": "work", "how": how, "batch": batch.id if batch else None})
        if how == "fail":
            raise ValueError("boom")


class BatchDone(quebec.BaseClass):
    def perform(self, role):
        batch = self.batch
        _record({"kind": "callback", "role": role, "batch": batch.id if batch else None,
                 "status": batch.status if batch else None})
"""

# Run by either implementation's python: create a batch of three jobs, print its id.
ENQUEUE = """
import json
import sys

import quebec
from {package} import BatchDone, BatchWork

url, prefix, out_path = sys.argv[1:4]
qc = quebec.Quebec(url, table_name_prefix=prefix)
qc.create_tables()
qc.register_job(BatchWork)
qc.register_job(BatchDone)
with qc.batch(
    description="interop",
    on_success=BatchDone.build("success"),
    on_failure=BatchDone.build("failure"),
    on_finish=BatchDone.build("finish"),
    metadata={{"by": "test"}},
) as batch:
    for how in ("ok", "fail", "ok"):
        BatchWork.perform_later(qc, how)
with open(out_path, "w", encoding="utf-8") as f:
    json.dump(batch.id, f)
"""


@pytest.fixture
def package(tmp_path: Path, prefix: str) -> Iterator[str]:
    name = f"wheel_batches_{prefix}"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text(textwrap.dedent(JOB_PACKAGE), encoding="utf-8")
    sys.path.insert(0, str(tmp_path))
    try:
        importlib.import_module(name)
        yield name
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(name, None)


def _enqueue(python: str, package: str, db_url: str, prefix: str, tmp_path: Path) -> int:
    script = tmp_path / "enqueue_batch.py"
    script.write_text(textwrap.dedent(ENQUEUE.format(package=package)), encoding="utf-8")
    out = tmp_path / "batch.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUEBEC_") and k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(tmp_path)
    done = subprocess.run(
        [python, str(script), db_url, prefix, str(out)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return int(json.loads(out.read_text()))


def _run_and_check(
    python: str, package: str, batch_id: int, db_url: str, prefix: str, tmp_path: Path, engine: Engine, procs: Any
) -> None:
    records = tmp_path / "records.jsonl"
    env = wheel._worker_env(db_url, prefix, tmp_path, records)
    env["QUEBEC_DISPATCHER_POLLING_INTERVAL"] = "0.1"
    worker = procs.start([python, "-m", "quebec", package], env, tmp_path, "worker")

    def entries() -> list[dict[str, Any]]:
        return [json.loads(line) for line in records.read_text().splitlines()] if records.exists() else []

    wheel._wait(lambda: len(entries()) >= 5, 60, "three jobs and two callbacks", procs)
    row = wheel._rows(
        engine,
        f"SELECT total_jobs, completed_jobs, failed_jobs, finished_at, failed_at, enqueued_at, description, metadata "
        f"FROM {prefix}_batches WHERE id = {batch_id}",
    )[0]
    assert row[:3] == (3, 2, 1)
    assert row[3] is not None and row[4] is not None and row[5] is not None
    assert row[6] == "interop" and json.loads(row[7]) == {"by": "test"}
    assert wheel._count(engine, f"SELECT COUNT(*) FROM {prefix}_batch_executions") == 0
    assert wheel._count(engine, f"SELECT COUNT(*) FROM {prefix}_jobs WHERE batch_id = {batch_id}") == 3
    got = entries()
    assert sorted(e["how"] for e in got if e["kind"] == "work") == ["fail", "ok", "ok"]
    assert all(e["batch"] == batch_id for e in got)
    callbacks = sorted((e["role"], e["status"]) for e in got if e["kind"] == "callback")
    assert callbacks == [("failure", "failed"), ("finish", "failed")]
    worker.terminate()
    worker.wait(20)
    assert len(entries()) == 5, "a callback ran twice"


def test_a_batch_the_wheel_creates_is_run_and_finished_by_our_worker(
    db_url: str,
    prefix: str,
    tmp_path: Path,
    engine: Engine,
    procs: wheel.Procs,
    package: str,
    make_qc: Callable[..., Any],
) -> None:
    batch_id = _enqueue(wheel.RS_PYTHON, package, db_url, prefix, tmp_path)
    _run_and_check(sys.executable, package, batch_id, db_url, prefix, tmp_path, engine, procs)
    batch = make_qc().find_batch(batch_id)
    assert (batch.status, batch.completed_jobs, batch.failed_jobs, batch.metadata) == ("failed", 2, 1, {"by": "test"})


def test_a_batch_we_create_is_run_and_finished_by_the_wheels_worker(
    db_url: str, prefix: str, tmp_path: Path, engine: Engine, procs: wheel.Procs, package: str
) -> None:
    batch_id = _enqueue(sys.executable, package, db_url, prefix, tmp_path)
    _run_and_check(wheel.RS_PYTHON, package, batch_id, db_url, prefix, tmp_path, engine, procs)
