"""Concurrency limits shared with the Rust wheel on one database, both ways.

(a) jobs we enqueue, two of them blocked behind a limit of 1, are run by the wheel's
worker, which releases its slots and unblocks our blocked rows; (b) the same with the
wheel enqueueing and our worker releasing. Either way the jobs never overlap and the
semaphore ends with its slot free.
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
from sqlalchemy import select
from sqlalchemy.engine import Engine

from quebec.schema import build_tables

pytestmark = [pytest.mark.slow, wheel.requires_wheel]
procs = wheel.procs  # the fixture; `engine` comes from conftest

JOB_PACKAGE = """
import json
import os
import time

import quebec


class LimitedJob(quebec.BaseClass):
    concurrency_limit = 1
    concurrency_duration = 60

    def concurrency_key(self, *args, **kwargs):
        return "k"

    def perform(self, n):
        start = time.time()
        time.sleep(0.2)
        with open(os.environ["QUEBEC_TEST_RECORDS"], "a", encoding="utf-8") as f:
            f.write(json.dumps({"id": self.id, "n": n, "start": start, "end": time.time(), "pid": os.getpid()}) + "\\n")
"""

WHEEL_ENQUEUE = """
import json
import sys

import quebec
from {package} import LimitedJob

url, prefix, out_path = sys.argv[1:4]
qc = quebec.Quebec(url, table_name_prefix=prefix)
assert qc.create_tables()
qc.register_job(LimitedJob)
ids = [LimitedJob.perform_later(qc, n).id for n in range(3)]
with open(out_path, "w", encoding="utf-8") as f:
    json.dump(ids, f)
"""


@pytest.fixture
def package(tmp_path: Path, prefix: str) -> Iterator[tuple[str, Any]]:
    name = f"wheel_flow_{prefix}"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text(textwrap.dedent(JOB_PACKAGE), encoding="utf-8")
    sys.path.insert(0, str(tmp_path))
    try:
        yield name, importlib.import_module(name).LimitedJob
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(name, None)


def _blocked_rows(engine: Engine, prefix: str) -> list[tuple[Any, ...]]:
    return wheel._rows(engine, f"SELECT concurrency_key, queue_name FROM {prefix}_blocked_executions ORDER BY job_id")


def _ran_one_at_a_time(records: Path, ids: list[int], engine: Engine, prefix: str) -> None:
    runs = sorted((json.loads(line) for line in records.read_text().splitlines()), key=lambda r: r["start"])
    assert sorted(r["id"] for r in runs) == sorted(ids)
    for before, after in zip(runs, runs[1:], strict=False):
        assert after["start"] >= before["end"], f"jobs {before['id']} and {after['id']} overlapped (limit 1)"
    semaphores = build_tables(prefix).semaphores
    with engine.connect() as conn:
        assert [tuple(r) for r in conn.execute(select(semaphores.c.key, semaphores.c.value))] == [("LimitedJob/k", 1)]
    assert wheel._count(engine, f"SELECT COUNT(*) FROM {prefix}_blocked_executions") == 0


def test_jobs_we_block_are_released_by_the_wheels_worker(
    db_url: str,
    prefix: str,
    tmp_path: Path,
    engine: Engine,
    procs: wheel.Procs,
    package: tuple[str, Any],
    make_qc: Callable[..., Any],
) -> None:
    name, job_class = package
    qc = make_qc()
    qc.register_job(job_class)
    jobs = [job_class.perform_later(n) for n in range(3)]
    assert [j.state for j in jobs] == ["ready", "blocked", "blocked"]
    assert _blocked_rows(engine, prefix) == [("LimitedJob/k", "default")] * 2
    records = tmp_path / "records.jsonl"
    worker = procs.start(
        [wheel.RS_PYTHON, "-m", "quebec", name], wheel._worker_env(db_url, prefix, tmp_path, records), tmp_path, "wheel"
    )
    wheel._drain_and_stop(engine, prefix, worker, procs, total=3)
    _ran_one_at_a_time(records, [j.id for j in jobs], engine, prefix)


def test_jobs_the_wheel_blocks_are_released_by_our_worker(
    db_url: str, prefix: str, tmp_path: Path, engine: Engine, procs: wheel.Procs, package: tuple[str, Any]
) -> None:
    name, _ = package
    script = tmp_path / "wheel_enqueue.py"
    script.write_text(textwrap.dedent(WHEEL_ENQUEUE.format(package=name)), encoding="utf-8")
    out = tmp_path / "ids.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUEBEC_") and k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(tmp_path)
    done = subprocess.run(
        [wheel.RS_PYTHON, str(script), db_url, prefix, str(out)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ids = json.loads(out.read_text())
    assert _blocked_rows(engine, prefix) == [("LimitedJob/k", "default")] * 2
    records = tmp_path / "records.jsonl"
    worker = procs.start(
        [sys.executable, "-m", "quebec", name], wheel._worker_env(db_url, prefix, tmp_path, records), tmp_path, "ours"
    )
    wheel._drain_and_stop(engine, prefix, worker, procs, total=3)
    _ran_one_at_a_time(records, ids, engine, prefix)
