"""Concurrency limits hold across two worker processes, and a killed holder's slot comes back.

Two real `python -m quebec <pkg>` processes share one database. Each job records when
its perform started and ended (time.time(), one host) in a file of its own process;
from those intervals we count how many jobs of one key ever ran at once.
"""

from __future__ import annotations

import collections
import importlib
import json
import os
import signal
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import test_two_processes
from sqlalchemy import create_engine, text
from test_two_processes import Procs, _wait

from quebec.dialects import for_url

pytestmark = pytest.mark.slow
procs = test_two_processes.procs  # the fixture: subprocesses killed at teardown

LIMIT = 3
PER_KEY = 12
THREADS = 4

JOB_PACKAGE = """
import json
import os
import threading
import time
from datetime import timedelta

import quebec

_lock = threading.Lock()


def record(**fields):
    path = os.path.join(os.environ["QUEBEC_TEST_RUNS_DIR"], f"runs-{os.getpid()}.jsonl")
    with _lock, open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(fields) + "\\n")


class ReportJob(quebec.BaseClass):
    concurrency_limit = 3
    concurrency_duration = 120

    def concurrency_key(self, account_id, **kwargs):
        return str(account_id)

    def perform(self, account_id):
        start = time.time()
        time.sleep(0.15)
        record(id=self.id, key=account_id, start=start, end=time.time(), pid=os.getpid())


class ApiCallJob(quebec.BaseClass):
    rate_limit_max = 5  # at most 5 runs...
    rate_limit_duration = timedelta(seconds=2)  # ...per rolling 2-second window
    rate_limit_on_throttle = quebec.RateLimitConflict.Reschedule  # default

    def rate_limit_key(self, region="us", **kwargs):
        return region  # bucket key: "ApiCallJob/us"

    def perform(self, region="us"):
        record(id=self.id, region=region, start=time.time(), pid=os.getpid())


class HoldJob(quebec.BaseClass):
    concurrency_limit = 1
    # Far longer than the test: the slot must come back through pruning, not by expiring (a
    # 2 s TTL expired under load before the survivor had started, unblocking the job early).
    concurrency_duration = 60

    def perform(self, n):
        record(id=self.id, n=n, start=time.time(), pid=os.getpid())
        gate = os.path.join(os.environ["QUEBEC_TEST_RUNS_DIR"], "gate")
        while n == 0 and not os.path.exists(gate):
            time.sleep(0.05)
        record(id=self.id, n=n, end=time.time(), pid=os.getpid())
"""


@pytest.fixture
def package(tmp_path: Path, prefix: str) -> Iterator[Any]:
    name = f"flow_jobs_{prefix}"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text(textwrap.dedent(JOB_PACKAGE), encoding="utf-8")
    (tmp_path / "runs").mkdir()
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(name)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(name, None)


def _env(db_url: str, prefix: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "QUEBEC_TABLE_NAME_PREFIX": prefix,
        "QUEBEC_WORKER_THREADS": str(THREADS),
        "QUEBEC_WORKER_POLLING_INTERVAL": "0.05",
        "QUEBEC_DISPATCHER_POLLING_INTERVAL": "0.1",
        "QUEBEC_SHUTDOWN_TIMEOUT": "5",
        "QUEBEC_TEST_RUNS_DIR": str(tmp_path / "runs"),
        "PYTHONPATH": str(tmp_path),
        **extra,
    }
    env.pop("QUEBEC_DATABASE_URL", None)
    return env


def _records(tmp_path: Path) -> list[dict[str, Any]]:
    lines = [line for p in (tmp_path / "runs").glob("runs-*.jsonl") for line in p.read_text().splitlines()]
    return [json.loads(line) for line in lines]


def _most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The largest number of intervals open at one instant (an end before a start at a tie)."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def _counter(db_url: str) -> Callable[[str], int]:
    engine = create_engine(for_url(db_url)[0])

    def count(sql: str) -> int:
        with engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar_one())

    return count


def test_two_processes_never_run_more_than_the_limit_of_one_key(
    db_url: str, prefix: str, make_qc: Callable[..., Any], procs: Procs, tmp_path: Path, package: Any
) -> None:
    qc = make_qc()
    job = qc.register_job(package.ReportJob)
    count = _counter(db_url)
    env = _env(db_url, prefix, tmp_path)
    name = package.__name__
    for i in range(2):
        procs.start([sys.executable, "-m", "quebec", name], env, tmp_path, f"worker{i}")
    _wait(lambda: count(f"SELECT COUNT(*) FROM {prefix}_processes WHERE kind = 'Worker'") >= 2, 20, "workers", procs)

    enqueued = qc.perform_all_later([job.build(key) for key in ("a", "b") for _ in range(PER_KEY)])
    states = collections.Counter(j.state for j in enqueued)
    assert states == {"ready": 2 * LIMIT, "blocked": 2 * (PER_KEY - LIMIT)}

    finished = f"SELECT COUNT(*) FROM {prefix}_jobs WHERE finished_at IS NOT NULL"
    _wait(lambda: count(finished) == 2 * PER_KEY, 60, "every job to finish", procs, every=0.1)
    for proc, _, _ in procs.started:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, procs.describe()

    runs = _records(tmp_path)
    assert sorted(r["id"] for r in runs) == sorted(j.id for j in enqueued)  # each once, blocked ones too
    most = {key: _most_at_once([(r["start"], r["end"]) for r in runs if r["key"] == key]) for key in "ab"}
    assert max(most.values()) <= LIMIT, f"jobs of one key at once: {most}; the limit is {LIMIT}"
    assert len({r["pid"] for r in runs}) == 2, "both processes ran jobs"
    assert count(f"SELECT COUNT(*) FROM {prefix}_blocked_executions") == 0
    assert count(f"SELECT MIN(value) FROM {prefix}_semaphores") == LIMIT  # every slot given back
    print(f"\nmost jobs of one key at once: {most}")


def test_a_sigkilled_holders_job_runs_again_and_the_blocked_job_after_it(
    db_url: str, prefix: str, make_qc: Callable[..., Any], procs: Procs, tmp_path: Path, package: Any
) -> None:
    """kill -9 of the process running the only slot's holder: the slot is not lost. The
    survivor prunes the dead process (its pid is gone), the holder runs again there, and
    the blocked job runs once it finishes."""
    qc = make_qc()
    job = qc.register_job(package.HoldJob)
    count = _counter(db_url)
    env = _env(db_url, prefix, tmp_path, QUEBEC_DISPATCHER_CONCURRENCY_MAINTENANCE_INTERVAL="0.5")
    name = package.__name__
    victim = procs.start([sys.executable, "-m", "quebec", name], env, tmp_path, "victim")
    holder, waiting = job.perform_later(0), job.perform_later(1)
    assert (holder.state, waiting.state) == ("ready", "blocked")
    _wait(lambda: any(r["id"] == holder.id for r in _records(tmp_path)), 20, "the holder to start", procs)
    victim.kill()
    victim.wait(10)
    procs.started = [p for p in procs.started if p[0] is not victim]
    (tmp_path / "runs" / "gate").touch()
    procs.start([sys.executable, "-m", "quebec", name], env, tmp_path, "survivor")
    finished = f"SELECT COUNT(*) FROM {prefix}_jobs WHERE finished_at IS NOT NULL"
    _wait(lambda: count(finished) == 2, 60, "both jobs to finish", procs, every=0.1)
    ends = {r["id"]: r["end"] for r in _records(tmp_path) if "end" in r}
    starts = [r for r in _records(tmp_path) if "start" in r and r["id"] == waiting.id]
    assert set(ends) == {holder.id, waiting.id}
    assert starts[0]["start"] >= ends[holder.id], "the blocked job waited for the holder's slot"


_START_JITTER = 0.1


def test_two_processes_never_start_more_than_the_rate_limit_in_any_window(
    db_url: str, prefix: str, make_qc: Callable[..., Any], procs: Procs, tmp_path: Path, package: Any
) -> None:
    """The seed's ApiCallJob (5 per rolling 2 s), 12 jobs, two processes of 4 threads: every
    6 consecutive starts of one region span at least 2 s, and every job runs."""
    qc = make_qc()
    job = qc.register_job(package.ApiCallJob)
    count = _counter(db_url)
    env = _env(db_url, prefix, tmp_path)
    for i in range(2):
        procs.start([sys.executable, "-m", "quebec", package.__name__], env, tmp_path, f"worker{i}")
    _wait(lambda: count(f"SELECT COUNT(*) FROM {prefix}_processes WHERE kind = 'Worker'") >= 2, 20, "workers", procs)
    enqueued = qc.perform_all_later([job.build(region="us") for _ in range(12)] + [job.build(region="eu")])
    finished = f"SELECT COUNT(*) FROM {prefix}_jobs WHERE finished_at IS NOT NULL"
    _wait(lambda: count(finished) == len(enqueued), 60, "every job to finish", procs, every=0.1)
    runs = _records(tmp_path)
    assert sorted(r["id"] for r in runs) == sorted(j.id for j in enqueued)
    starts = sorted(r["start"] for r in runs if r["region"] == "us")
    spans = [later - first for first, later in zip(starts, starts[5:], strict=False)]
    # The limiter admits a job in the database; perform stamps its start a moment later, on a
    # loaded machine up to tens of ms later for one job and not for another. So 6 admissions
    # at least 2 s apart show as starts at least 2 s minus that jitter apart; 6 admissions in
    # one window would show as ~0 s.
    assert min(spans) >= 2.0 - _START_JITTER, f"6 starts within {min(spans):.3f}s: more than 5 in one 2 s window"
    print(f"\nshortest span of 6 consecutive starts: {min(spans):.3f}s")
