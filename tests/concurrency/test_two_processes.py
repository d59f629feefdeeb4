"""Two worker processes draining one queue run every job exactly once.

Each backend gets two real `python -m quebec <pkg>` processes on the same tables.
The job appends its job id to a file of its own process (`runs-<pid>.txt`), so a job
run twice shows up twice, and we can tell which process ran what.
"""

from __future__ import annotations

import collections
import importlib
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
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from quebec.dialects import for_url

pytestmark = pytest.mark.slow

JOBS = 2000
THREADS = 4
DEADLINE = 40.0  # seconds for the whole queue to drain (typically 2-12 s)

JOB_PACKAGE = """
import os
import threading

import quebec

_lock = threading.Lock()


class DrainJob(quebec.BaseClass):
    def perform(self, n):
        path = os.path.join(os.environ["QUEBEC_TEST_RUNS_DIR"], f"runs-{os.getpid()}.txt")
        line = f"{self.id} {n}\\n"
        with _lock, open(path, "a", encoding="utf-8") as f:
            f.write(line)
"""


def _engine(db_url: str) -> Engine:
    sa_url, _ = for_url(db_url)
    return create_engine(sa_url)


def _count(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


class Procs:
    """Subprocesses of one test; whatever is still running at teardown is killed."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[tuple[subprocess.Popen[bytes], Path, Path]] = []

    def start(self, argv: list[str], env: dict[str, str], cwd: Path, name: str) -> subprocess.Popen[bytes]:
        out = self.tmp_path / f"{name}.stdout"
        err = self.tmp_path / f"{name}.stderr"
        with out.open("wb") as o, err.open("wb") as e:
            proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=o, stderr=e, stdin=subprocess.DEVNULL)
        self.started.append((proc, out, err))
        return proc

    def stderr(self, proc: subprocess.Popen[bytes]) -> str:
        for p, _, err in self.started:
            if p is proc:
                return err.read_text(encoding="utf-8", errors="replace")
        raise KeyError(proc)

    def describe(self) -> str:
        parts = []
        for p, _, err in self.started:
            tail = err.read_text(encoding="utf-8", errors="replace")[-3000:]
            parts.append(f"--- pid {p.pid} rc={p.poll()} stderr tail:\n{tail}")
        return "\n".join(parts)

    def kill_all(self) -> None:
        for proc, _, _ in self.started:
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


def _wait(check: Callable[[], Any], within: float, what: str, procs: Procs, every: float = 0.05) -> Any:
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        for proc, _, _ in procs.started:
            if proc.poll() is not None:
                pytest.fail(
                    f"a worker exited early (rc={proc.returncode}) while waiting for {what}\n{procs.describe()}"
                )
        time.sleep(every)
    pytest.fail(f"timed out after {within}s waiting for {what} (last: {last!r})\n{procs.describe()}")


def test_two_worker_processes_run_every_job_exactly_once(
    backend: str, db_url: str, prefix: str, make_qc: Callable[..., Any], procs: Procs, tmp_path: Path
) -> None:
    package = f"drain_jobs_{prefix}"
    pkg_dir = tmp_path / package
    pkg_dir.mkdir()
    (pkg_dir / "__init__.py").write_text(textwrap.dedent(JOB_PACKAGE), encoding="utf-8")
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()

    qc = make_qc()  # creates the tables before either worker starts
    engine = _engine(db_url)
    sys.path.insert(0, str(tmp_path))
    try:
        module = importlib.import_module(package)
        job_class = qc.register_job(module.DrainJob)

        env = {
            **os.environ,
            "DATABASE_URL": db_url,
            "QUEBEC_TABLE_NAME_PREFIX": prefix,
            "QUEBEC_WORKER_THREADS": str(THREADS),
            "QUEBEC_WORKER_POLLING_INTERVAL": "0.05",
            "QUEBEC_SHUTDOWN_TIMEOUT": "5",
            "QUEBEC_TEST_RUNS_DIR": str(runs_dir),
            "PYTHONPATH": str(tmp_path),
        }
        env.pop("QUEBEC_DATABASE_URL", None)
        workers = [
            procs.start([sys.executable, "-m", "quebec", package], env, tmp_path, f"worker{i}") for i in range(2)
        ]

        # Both processes polling before anything is there to take, so both get a share.
        workers_sql = f"SELECT COUNT(*) FROM {prefix}_processes WHERE kind = 'Worker'"
        _wait(lambda: _count(engine, workers_sql) >= 2, 20, "both workers to register", procs)

        started = time.monotonic()
        enqueued = qc.perform_all_later([job_class.build(i) for i in range(JOBS)])
        assert len(enqueued) == JOBS and all(j.id is not None for j in enqueued)
        ids = {j.id for j in enqueued}

        finished_sql = f"SELECT COUNT(*) FROM {prefix}_jobs WHERE finished_at IS NOT NULL"
        _wait(lambda: _count(engine, finished_sql) == JOBS, DEADLINE, f"{JOBS} jobs to finish", procs, every=0.1)
        drained = time.monotonic() - started

        for proc in workers:
            proc.send_signal(signal.SIGTERM)
        for proc in workers:
            try:
                rc = proc.wait(20)
            except subprocess.TimeoutExpired:
                pytest.fail(f"worker pid {proc.pid} did not exit within 20s of SIGTERM\n{procs.describe()}")
            assert rc == 0, f"worker pid {proc.pid} exited {rc}\n{procs.describe()}"

        runs: collections.Counter[int] = collections.Counter()
        per_pid: dict[int, int] = {}
        for path in runs_dir.glob("runs-*.txt"):
            pid = int(path.stem.split("-")[1])
            lines = path.read_text(encoding="utf-8").split()
            job_ids = [int(x) for x in lines[0::2]]
            per_pid[pid] = len(job_ids)
            runs.update(job_ids)

        twice = {job_id: n for job_id, n in runs.items() if n > 1}
        assert not twice, f"{len(twice)} jobs ran more than once, e.g. {sorted(twice.items())[:10]}"
        missing = ids - set(runs)
        assert not missing, f"{len(missing)} jobs never ran, e.g. {sorted(missing)[:10]}"
        assert set(runs) == ids
        worker_pids = {p.pid for p in workers}
        assert set(per_pid) == worker_pids, f"runs by pid {per_pid}, workers {worker_pids}"
        assert all(n > 0 for n in per_pid.values()), per_pid

        assert _count(engine, f"SELECT COUNT(*) FROM {prefix}_jobs") == JOBS
        assert _count(engine, finished_sql) == JOBS
        assert _count(engine, f"SELECT COUNT(*) FROM {prefix}_failed_executions") == 0
        assert _count(engine, f"SELECT COUNT(*) FROM {prefix}_claimed_executions") == 0
        assert _count(engine, f"SELECT COUNT(*) FROM {prefix}_ready_executions") == 0
        assert _count(engine, f"SELECT COUNT(*) FROM {prefix}_processes") == 0

        for proc in workers:
            err = procs.stderr(proc)
            assert "Traceback" not in err, err[-3000:]
            if backend == "sqlite":
                assert "database is locked" not in err.lower(), err[-3000:]
        print(
            f"\n[{backend}] {JOBS} jobs drained by 2 processes x {THREADS} threads in {drained:.2f}s; "
            f"split {sorted(per_pid.values())}"
        )
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(package, None)
        engine.dispose()
