"""Three scheduler processes on one database enqueue each run of an `every second` task once.

Each backend gets three real processes running only the scheduler (`spawn=["scheduler"]`)
on the same tables and the same recurring.yml, for about ten real seconds. The test then
counts jobs per recorded run_at: exactly one each, no job without its run, no second missed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from quebec.dialects import for_url

pytestmark = pytest.mark.slow

SCHEDULERS = 3
RUNS = 10  # distinct seconds to wait for

SCRIPT = """
import sys

import quebec

qc = quebec.Quebec(sys.argv[1], table_name_prefix=sys.argv[2], process_heartbeat_interval=1)


class Tick(quebec.BaseClass):
    def perform(self):
        pass


qc.register_job(Tick)
sys.exit(qc.run(spawn=["scheduler"]))
"""


def test_three_schedulers_enqueue_every_second_exactly_once(db_url: str, prefix: str, tmp_path: Path) -> None:
    import quebec

    quebec.Quebec(db_url, table_name_prefix=prefix).create_tables()
    (tmp_path / "recurring.yml").write_text("development:\n  tick: {class: Tick, schedule: every second}\n")
    (tmp_path / "scheduler.py").write_text(textwrap.dedent(SCRIPT))
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUEBEC_") or k.startswith("QUEBEC_TEST_")}
    env["QUEBEC_ENV"] = "development"
    procs = [
        subprocess.Popen(
            [sys.executable, "scheduler.py", db_url, prefix],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / f"s{i}.log").open("wb"),
        )
        for i in range(SCHEDULERS)
    ]
    sa_url, _ = for_url(db_url)
    engine = create_engine(sa_url)
    runs = f"SELECT COUNT(DISTINCT run_at) FROM {prefix}_recurring_executions"
    try:
        deadline = time.monotonic() + 40
        with engine.connect() as conn:
            while time.monotonic() < deadline:
                conn.rollback()
                if int(conn.execute(text(runs)).scalar_one()) >= RUNS:
                    break
                assert all(p.poll() is None for p in procs), [p.returncode for p in procs]
                time.sleep(0.2)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
    logs = "".join((tmp_path / f"s{i}.log").read_text(errors="replace") for i in range(SCHEDULERS))
    assert all(p.returncode == 0 for p in procs), logs
    with engine.connect() as conn:
        per_run = conn.execute(
            text(
                f"SELECT e.run_at, COUNT(j.id) FROM {prefix}_recurring_executions e "
                f"JOIN {prefix}_jobs j ON j.id = e.job_id WHERE e.task_key = 'tick' GROUP BY e.run_at ORDER BY e.run_at"
            )
        ).all()
        jobs = int(conn.execute(text(f"SELECT COUNT(*) FROM {prefix}_jobs")).scalar_one())
    engine.dispose()
    assert len(per_run) >= RUNS, logs
    assert {n for _, n in per_run} == {1}  # each run enqueued once
    assert jobs == len(per_run)  # and no job was left behind by a scheduler that lost a race
    times = [datetime.fromisoformat(at) if isinstance(at, str) else at for at, _ in per_run]  # SQLite: text
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert set(gaps) == {timedelta(seconds=1)}, per_run  # no second skipped while three were running
