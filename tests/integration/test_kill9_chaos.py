"""The crash test: two worker processes drain a queue while one of them is killed with
SIGKILL every ~2 s and restarted.

What must hold (at-least-once): every job finishes, none fails, no claim is left behind,
the dead processes' rows are pruned, and every job ran at least once. Jobs in flight
at a kill (or finished but not yet flushed by the completer) run again: the number of
such duplicates and the time from the last kill to the last job finishing are printed
(run pytest with -s).

Each job sleeps 1-5 ms and inserts its id into `<prefix>_runs`, a plain table without a
unique constraint, so a job that ran twice shows up twice.
"""

from __future__ import annotations

import importlib
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from integration_support import (
    Procs,
    count,
    engine_for,
    start_worker,
    stop_gracefully,
    until,
    worker_env,
    write_package,
)
from sqlalchemy import func, select, text

from quebec.clock import utcnow
from quebec.schema import build_tables

pytestmark = pytest.mark.slow

JOBS = int(os.environ.get("QUEBEC_TEST_CHAOS_JOBS", "5000"))
THREADS = 4
KILL_EVERY = (1.5, 2.5)  # seconds between kills, drawn at random: ~2 s
DRAIN_DEADLINE = 75.0  # the whole drain, kills included (typically 5-30 s)
ENQUEUE_BATCH = 1000

JOB_PACKAGE = """
import os
import random
import threading
import time

from sqlalchemy import text

import quebec
from quebec.store import Database

_lock = threading.Lock()
_db = []


def _database():
    with _lock:
        if not _db:
            _db.append(Database(os.environ["DATABASE_URL"], prefix=os.environ["QUEBEC_TABLE_NAME_PREFIX"]))
        return _db[0]


def _record(tx, *, job_id):
    table = os.environ["QUEBEC_TABLE_NAME_PREFIX"] + "_runs"
    tx.conn.execute(text(f"INSERT INTO {table} (job_id) VALUES (:job_id)"), {"job_id": job_id})


class ChaosJob(quebec.BaseClass):
    def perform(self, n):
        time.sleep(random.uniform(0.001, 0.005))
        _database().transact(_record, job_id=self.id)
"""


@pytest.mark.timeout(240)
def test_kill_9_every_two_seconds_loses_no_job_and_leaves_no_claim_behind(
    backend: str,
    db_url: str,
    prefix: str,
    make_qc: Callable[..., Any],
    procs: Procs,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    package = f"chaos_jobs_{prefix}"
    write_package(tmp_path, package, JOB_PACKAGE)
    qc = make_qc()
    engine = engine_for(db_url)
    runs = f"{prefix}_runs"
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"CREATE TABLE {runs} (job_id BIGINT NOT NULL)"))
        monkeypatch.syspath_prepend(str(tmp_path))
        module = importlib.import_module(package)
        monkeypatch.setitem(sys.modules, package, module)
        job_class = qc.register_job(module.ChaosJob)
        ids: set[int] = set()
        for start in range(0, JOBS, ENQUEUE_BATCH):
            batch = qc.perform_all_later([job_class.build(i) for i in range(start, min(JOBS, start + ENQUEUE_BATCH))])
            ids.update(j.id for j in batch)
        assert len(ids) == JOBS

        env = worker_env(
            db_url,
            prefix,
            tmp_path,
            QUEBEC_WORKER_THREADS=str(THREADS),
            QUEBEC_SHUTDOWN_TIMEOUT="5",
            QUEBEC_PROCESS_HEARTBEAT_INTERVAL="1",
            QUEBEC_LOG_LEVEL="WARNING",
        )

        def start(name: str) -> subprocess.Popen[bytes]:
            return start_worker(procs, package, env, tmp_path, name)

        def finished() -> int:
            return count(engine, f"SELECT COUNT(*) FROM {prefix}_jobs WHERE finished_at IS NOT NULL")

        began = time.monotonic()
        survivor = start("survivor")
        victim = start("victim")
        kills = 0
        last_kill_at: datetime | None = None
        next_kill = time.monotonic() + rng.uniform(*KILL_EVERY)
        while finished() < JOBS:
            now = time.monotonic()
            if now - began > DRAIN_DEADLINE:
                pytest.fail(
                    f"{finished()}/{JOBS} jobs finished after {DRAIN_DEADLINE}s and {kills} kills "
                    f"(seed {seed})\n{procs.describe()}"
                )
            for proc in (survivor, victim):
                if proc.poll() is not None:
                    pytest.fail(f"worker pid {proc.pid} exited by itself (rc={proc.returncode})\n{procs.describe()}")
            if now >= next_kill:
                victim.kill()
                victim.wait(10)
                last_kill_at = utcnow()
                kills += 1
                victim = start("victim")
                next_kill = time.monotonic() + rng.uniform(*KILL_EVERY)
            time.sleep(0.05)
        drained = time.monotonic() - began

        tables = build_tables(prefix)
        with engine.connect() as conn:
            last_finish = conn.execute(select(func.max(tables.jobs.c.finished_at))).scalar_one()
        assert kills >= 1, f"the queue drained in {drained:.1f}s, before the first kill; raise QUEBEC_TEST_CHAOS_JOBS"
        assert last_kill_at is not None
        after_last_kill = (last_finish - last_kill_at).total_seconds()

        # Every killed process is pruned by the living ones (its pid is gone on this host); the
        # last victim may still be starting: wait for it to register, so TERM finds its handlers.
        alive = {survivor.pid, victim.pid}
        until(
            lambda: set(_pids(engine, prefix)) == alive,
            15,
            "the killed workers' rows pruned and the living ones registered",
            procs,
            alive=[survivor, victim],
        )
        assert stop_gracefully(survivor, procs) == 0, procs.describe()
        assert stop_gracefully(victim, procs) == 0, procs.describe()
        assert _pids(engine, prefix) == [], "processes rows left after every worker stopped"

        def n(table: str, where: str = "1 = 1") -> int:
            return count(engine, f"SELECT COUNT(*) FROM {prefix}_{table} WHERE {where}")

        assert n("jobs") == JOBS, "jobs appeared or vanished"
        assert n("jobs", "finished_at IS NOT NULL") == JOBS
        assert n("failed_executions") == 0, "a job failed"
        assert n("claimed_executions") == 0, "claims left behind"
        assert n("ready_executions") == 0
        assert n("scheduled_executions") == 0

        with engine.connect() as conn:
            run_counts = dict(conn.execute(text(f"SELECT job_id, COUNT(*) FROM {runs} GROUP BY job_id")).all())
        never = ids - set(run_counts)
        assert not never, f"{len(never)} finished jobs never recorded a run, e.g. {sorted(never)[:10]}"
        assert set(run_counts) == ids, f"runs recorded for unknown jobs: {sorted(set(run_counts) - ids)[:10]}"
        duplicates = sum(1 for c in run_counts.values() if c > 1)
        extra_runs = sum(c - 1 for c in run_counts.values())

        survivor_log = procs.output(survivor)
        print(
            f"\n[{backend}] chaos: {JOBS} jobs, {kills} kills (seed {seed}), drained in {drained:.1f}s; "
            f"{duplicates} jobs ran more than once ({extra_runs} extra runs); last job finished "
            f"{after_last_kill:.2f}s after the last kill"
        )
        assert "Traceback" not in survivor_log, survivor_log[-5000:]
    finally:
        procs.kill_all()
        with engine.begin() as conn:
            conn.execute(text(f"DROP TABLE IF EXISTS {runs}"))
        engine.dispose()


def _pids(engine: Any, prefix: str) -> list[int]:
    with engine.connect() as conn:
        return sorted(int(p) for p in conn.execute(text(f"SELECT pid FROM {prefix}_processes")).scalars())
