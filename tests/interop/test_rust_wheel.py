"""Interoperability with the Rust original (quebec 0.4.2 from PyPI) on one database.

(a) jobs the wheel enqueues (on tables the wheel created) are run by our worker;
(b) jobs we enqueue (on tables we created) are run by the wheel's worker.
Either way every argument must arrive intact and the job must end finished.

The wheel has the same import name, so it lives in a venv of its own; these tests
run it through the interpreter in QUEBEC_RS_PYTHON and are skipped without it.
Both sides run the same generated job package: `InteropJob.perform` appends what
it received, as JSON, to the file named by QUEBEC_TEST_RECORDS.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from quebec.store import jobs

pytestmark = pytest.mark.slow

RS_PYTHON = os.environ.get("QUEBEC_RS_PYTHON", "")
requires_wheel = pytest.mark.skipif(
    not (RS_PYTHON and os.path.isfile(RS_PYTHON) and os.access(RS_PYTHON, os.X_OK)),
    reason="QUEBEC_RS_PYTHON does not name the python of a venv with quebec==0.4.2 (and structlog)",
)

# Every kind of argument a user passes; `set` holds enqueue options.
CASES: list[dict[str, Any]] = [
    {"args": [1, "two", 3.5], "kwargs": {}},
    {"args": [], "kwargs": {"name": "ünïcødé ☃ 中文 𝄞 🎉", "flag": True, "off": False, "nothing": None}},
    {
        "args": [{"nested": {"list": [1, [2, [3, {"deep": None}]]], "empty": {}, "empty_list": []}}],
        "kwargs": {"opts": {"a": [True, False, None], "b": {"c": "d"}}},
    },
    {"args": [None, True, False, 0, -1, 2**53 + 1, -(2**62), 2**63 - 1], "kwargs": {}},
    {"args": [0.1, -2.5e-10, 1e300, 1.0, 0.0, -7.25], "kwargs": {"ratio": 1 / 3}},
    {"args": ['quotes " and \\ backslash', "new\nline\ttab", "", "<tag>&amp;'"], "kwargs": {"ключ": "значение"}},
    {"args": [{"a": 1}], "kwargs": {}},  # a trailing positional dict is not keyword arguments
    {"args": [[{"x": [1, 2]}, {"y": None}]], "kwargs": {"_private": 1, "list": [[], [[]]]}},
    {"args": [], "kwargs": {}},
    {"args": ["delayed"], "kwargs": {"when": "later"}, "set": {"wait": 1}},
    {"args": ["elsewhere"], "kwargs": {"p": 5}, "set": {"queue": "other", "priority": 5}},
]
DELAYED = 9
ELSEWHERE = 10

JOB_PACKAGE = """
import json
import os
import threading
import time

import quebec

_lock = threading.Lock()


class InteropJob(quebec.BaseClass):
    def perform(self, *args, **kwargs):
        record = {"id": getattr(self, "id", None), "queue": getattr(self, "queue_name", None),
                  "pid": os.getpid(), "t": time.time(), "args": args, "kwargs": kwargs}
        line = json.dumps(record, sort_keys=True, ensure_ascii=False)
        with _lock, open(os.environ["QUEBEC_TEST_RECORDS"], "a", encoding="utf-8") as f:
            f.write(line + "\\n")
"""

# Run by the wheel's python: create tables, enqueue CASES, print what was enqueued as JSON.
WHEEL_ENQUEUE = """
import json
import sys
import time

import quebec

url, prefix, cases_path, out_path = sys.argv[1:5]
qc = quebec.Quebec(url, table_name_prefix=prefix)
assert qc.create_tables()


class InteropJob(quebec.BaseClass):
    def perform(self, *args, **kwargs):
        pass


qc.register_job(InteropJob)
out = []
for case in json.load(open(cases_path, encoding="utf-8")):
    target = InteropJob.set(**case["set"]) if case.get("set") else InteropJob
    before = time.time()
    job = target.perform_later(*case["args"], **case["kwargs"])
    out.append({"id": job.id, "active_job_id": job.active_job_id, "before": before})
with open(out_path, "w", encoding="utf-8") as f:
    json.dump(out, f)
"""


def canonical(value: Any) -> str:
    """JSON with sorted keys: tells 1 from 1.0 from True, unlike ==."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


class Procs:
    """Subprocesses of one test; whatever is still running at teardown is killed."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self, argv: list[str], env: dict[str, str], cwd: Path, name: str) -> subprocess.Popen[bytes]:
        log = self.tmp_path / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        self.started.append((proc, log))
        return proc

    def output(self, proc: subprocess.Popen[bytes]) -> str:
        for p, log in self.started:
            if p is proc:
                return log.read_text(encoding="utf-8", errors="replace")
        raise KeyError(proc)

    def describe(self) -> str:
        return "\n".join(
            f"--- {log.name} pid {p.pid} rc={p.poll()}:\n{log.read_text(encoding='utf-8', errors='replace')[-4000:]}"
            for p, log in self.started
        )

    def kill_all(self) -> None:
        for proc, _ in self.started:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    p = Procs(tmp_path)
    try:
        yield p
    finally:
        p.kill_all()


@pytest.fixture
def job_package(tmp_path: Path, prefix: str) -> Iterator[tuple[str, Any]]:
    """The generated package (its name, and its InteropJob imported in this process)."""
    name = f"interop_jobs_{prefix}"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text(textwrap.dedent(JOB_PACKAGE), encoding="utf-8")
    sys.path.insert(0, str(tmp_path))
    try:
        yield name, importlib.import_module(name).InteropJob
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(name, None)


def _count(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def _wait(check: Callable[[], Any], within: float, what: str, procs: Procs) -> Any:
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        for proc, _ in procs.started:
            if proc.poll() is not None:
                pytest.fail(
                    f"a worker exited early (rc={proc.returncode}) while waiting for {what}\n{procs.describe()}"
                )
        time.sleep(0.05)
    pytest.fail(f"timed out after {within}s waiting for {what} (last: {last!r})\n{procs.describe()}")


def _worker_env(db_url: str, prefix: str, tmp_path: Path, records: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUEBEC_")}
    env.update(
        {
            "DATABASE_URL": db_url,
            "QUEBEC_TABLE_NAME_PREFIX": prefix,
            "QUEBEC_WORKER_THREADS": "2",
            "QUEBEC_CREATE_TABLES": "false",
            "QUEBEC_TEST_RECORDS": str(records),
            "PYTHONPATH": str(tmp_path),
        }
    )
    return env


def _drain_and_stop(
    engine: Engine, prefix: str, worker: subprocess.Popen[bytes], procs: Procs, total: int = len(CASES)
) -> float:
    """Wait until every job is finished, then TERM the worker; returns seconds to drain."""
    started = time.monotonic()
    finished = f"SELECT COUNT(*) FROM {prefix}_jobs WHERE finished_at IS NOT NULL"
    failed = f"SELECT COUNT(*) FROM {prefix}_failed_executions"

    def done() -> bool:
        if _count(engine, failed):
            pytest.fail(
                f"failed executions: {_rows(engine, f'SELECT job_id, error FROM {prefix}_failed_executions')}"
                f"\n{procs.describe()}"
            )
        return _count(engine, finished) == total

    _wait(done, 30, f"{total} jobs to finish", procs)
    drained = time.monotonic() - started
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"worker did not exit within 20s of SIGTERM\n{procs.describe()}")
    return drained


def _rows(engine: Engine, sql: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


def _check_records(
    records: Path, ids: list[int], engine: Engine, prefix: str, cases: list[dict[str, Any]] = CASES
) -> dict[int, dict[str, Any]]:
    """Each job ran once with exactly its arguments; the job rows end finished and in place."""
    lines = records.read_text(encoding="utf-8").splitlines()
    by_id: dict[int, dict[str, Any]] = {}
    for line in lines:
        record = json.loads(line)
        assert record["id"] not in by_id, f"job {record['id']} ran twice"
        by_id[record["id"]] = record
    assert sorted(by_id) == sorted(ids), f"ran {sorted(by_id)}, enqueued {sorted(ids)}"
    for case, job_id in zip(cases, ids, strict=True):
        got = by_id[job_id]
        assert canonical(got["args"]) == canonical(case["args"]), (case, got)
        assert canonical(got["kwargs"]) == canonical(case["kwargs"]), (case, got)

    rows = {
        r[0]: r[1:]
        for r in _rows(engine, f"SELECT id, queue_name, priority, finished_at, class_name FROM {prefix}_jobs")
    }
    assert sorted(rows) == sorted(ids)
    for job_id in ids:
        assert rows[job_id][2] is not None, f"job {job_id} not finished: {rows[job_id]}"
        assert rows[job_id][3] == "InteropJob"
    for case, job_id in zip(cases, ids, strict=True):
        assert rows[job_id][:2] == (("other", 5) if "queue" in case.get("set", {}) else ("default", 0))
    for table in (
        "failed_executions",
        "claimed_executions",
        "ready_executions",
        "scheduled_executions",
        "blocked_executions",
    ):
        assert _count(engine, f"SELECT COUNT(*) FROM {prefix}_{table}") == 0, table
    return by_id


@requires_wheel
def test_jobs_enqueued_by_the_wheel_run_on_our_worker(
    backend: str,
    db_url: str,
    prefix: str,
    tmp_path: Path,
    engine: Engine,
    procs: Procs,
    job_package: tuple[str, Any],
    make_qc: Callable[..., Any],
) -> None:
    package, _ = job_package
    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps(CASES), encoding="utf-8")
    script = tmp_path / "wheel_enqueue.py"
    script.write_text(textwrap.dedent(WHEEL_ENQUEUE), encoding="utf-8")
    enqueued_file = tmp_path / "enqueued.json"
    records = tmp_path / "records.jsonl"

    started = time.monotonic()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUEBEC_")}
    done = subprocess.run(
        [RS_PYTHON, str(script), db_url, prefix, str(cases), str(enqueued_file)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    wheel_enqueue = time.monotonic() - started
    enqueued = json.loads(enqueued_file.read_text(encoding="utf-8"))
    ids = [e["id"] for e in enqueued]
    assert all(isinstance(i, int) for i in ids), enqueued
    if backend == "sqlite":
        # sqlite:////abs/path is absolute for the wheel too (not relative to cwd).
        assert (tmp_path / "quebec.db").exists() and not (tmp_path / "tmp").exists()
    assert _count(engine, f"SELECT COUNT(*) FROM {prefix}_scheduled_executions") == 1

    env = _worker_env(db_url, prefix, tmp_path, records)
    env["QUEBEC_DISPATCHER_POLLING_INTERVAL"] = "0.1"
    worker = procs.start([sys.executable, "-m", "quebec", package], env, tmp_path, "our-worker")
    drained = _drain_and_stop(engine, prefix, worker, procs)
    assert worker.returncode == 0, procs.describe()

    by_id = _check_records(records, ids, engine, prefix)
    assert by_id[ids[ELSEWHERE]]["queue"] == "other"
    delayed = by_id[ids[DELAYED]]
    assert delayed["t"] >= enqueued[DELAYED]["before"] + 0.95, "the set(wait=1) job ran early"
    assert _count(engine, f"SELECT COUNT(*) FROM {prefix}_processes") == 0
    output = procs.output(worker)
    assert "Traceback" not in output, output[-4000:]

    # Our create_tables on the wheel's schema is a no-op, not an error.
    assert make_qc().create_tables()
    print(f"\n[{backend}] wheel enqueue {wheel_enqueue:.2f}s; our worker drained {len(CASES)} jobs in {drained:.2f}s")


@requires_wheel
@pytest.mark.parametrize("bulk", [False, True], ids=["one_by_one", "bulk"])
def test_jobs_we_enqueue_run_on_the_wheels_worker(
    backend: str,
    db_url: str,
    prefix: str,
    tmp_path: Path,
    engine: Engine,
    procs: Procs,
    job_package: tuple[str, Any],
    make_qc: Callable[..., Any],
    bulk: bool,
) -> None:
    package, job_class = job_package
    qc = make_qc()
    qc.register_job(job_class)
    records = tmp_path / "records.jsonl"

    def target(case: dict[str, Any]) -> Any:
        return job_class.set(**case["set"]) if case.get("set") else job_class

    if bulk:  # enough jobs for the bulk path (COPY on PostgreSQL, INSERT … SELECT on SQLite)
        cases = CASES * (jobs.BULK // len(CASES) + 1)
        before_delayed = time.time()
        ids = [job.id for job in qc.perform_all_later(target(c).build(*c["args"], **c["kwargs"]) for c in cases)]
    else:
        cases, ids = CASES, []
        for i, case in enumerate(CASES):
            if i == DELAYED:
                before_delayed = time.time()
            ids.append(target(case).perform_later(qc, *case["args"], **case["kwargs"]).id)
    assert all(isinstance(i, int) for i in ids)

    started = time.monotonic()
    worker = procs.start(
        [RS_PYTHON, "-m", "quebec", package], _worker_env(db_url, prefix, tmp_path, records), tmp_path, "wheel-worker"
    )
    drained = _drain_and_stop(engine, prefix, worker, procs, total=len(cases))
    assert worker.returncode == 0, procs.describe()

    by_id = _check_records(records, ids, engine, prefix, cases)
    for case, job_id in zip(cases, ids, strict=True):
        if "wait" in case.get("set", {}):
            assert by_id[job_id]["t"] >= before_delayed + 0.95, "a set(wait=1) job ran early"
    assert _count(engine, f"SELECT COUNT(*) FROM {prefix}_processes") == 0
    print(
        f"\n[{backend}] wheel worker started and drained {len(cases)} of our jobs in {drained:.2f}s "
        f"(total {time.monotonic() - started:.2f}s)"
    )
