"""Recurring tasks shared with the Rust wheel (quebec 0.4.2) on one database.

(a) the wheel's scheduler fires a recurring.yml task on tables the wheel created; our
worker runs the jobs; (b) our scheduler fires one on tables we created; the wheel's
worker runs them. Either way the arguments arrive intact, each run is one job, and the
jobs end finished.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

import quebec
from quebec.dialects import for_url

pytestmark = pytest.mark.slow

RS_PYTHON = os.environ.get("QUEBEC_RS_PYTHON", "")
requires_wheel = pytest.mark.skipif(
    not (RS_PYTHON and os.path.isfile(RS_PYTHON) and os.access(RS_PYTHON, os.X_OK)),
    reason="QUEBEC_RS_PYTHON does not name the python of a venv with quebec==0.4.2",
)
ARGS = [42, "ünï", {"k": [1, None, True]}]
RECURRING_YML = f"""
development:
  wheel_tick:
    class: RecurringTick
    schedule: every second
    args: {json.dumps(ARGS)}
    queue: ticks
"""

# Run by the wheel's python: sys.argv = url, prefix, spawn (comma-separated), records path.
WHEEL = """
import json
import sys

import quebec

url, prefix, spawn, records = sys.argv[1:5]
qc = quebec.Quebec(url, table_name_prefix=prefix)
qc.create_tables()


class RecurringTick(quebec.BaseClass):
    def perform(self, *args, **kwargs):
        with open(records, "a", encoding="utf-8") as f:
            f.write(json.dumps({"id": self.id, "args": args}) + "\\n")


qc.register_job(RecurringTick)
qc.run(spawn=spawn.split(","))
"""


class RecurringTick(quebec.BaseClass):
    seen: list[tuple[int | None, tuple[Any, ...]]] = []

    def perform(self, *args: Any) -> None:
        RecurringTick.seen.append((self.id, args))


@pytest.fixture
def wheel(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    (tmp_path / "wheel.py").write_text(textwrap.dedent(WHEEL))

    def start(url: str, prefix: str, spawn: str, records: Path) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("QUEBEC_") and k != "PYTHONPATH"}
        env["QUEBEC_ENV"] = "development"
        log = (tmp_path / "wheel.log").open("ab")
        proc = subprocess.Popen(
            [RS_PYTHON, "wheel.py", url, prefix, spawn, str(records)], cwd=tmp_path, env=env, stdout=log, stderr=log
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _engine(db_url: str) -> Engine:
    sa_url, _ = for_url(db_url)
    return create_engine(sa_url)


def _scalar(engine: Engine, sql: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar_one()


def _eventually(check: Callable[[], Any], within: float, what: str, log: Path) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if found := check():
                return found
        except SQLAlchemyError:  # the other side has not created the tables yet
            pass
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    pytest.fail(f"timed out after {within}s waiting for {what}\n{tail}")


@requires_wheel
def test_a_task_the_wheels_scheduler_fires_is_run_by_our_worker(
    db_url: str, prefix: str, tmp_path: Path, wheel: Callable[..., subprocess.Popen[bytes]]
) -> None:
    (tmp_path / "recurring.yml").write_text(RECURRING_YML)
    proc = wheel(db_url, prefix, "scheduler", tmp_path / "unused.jsonl")
    engine = _engine(db_url)
    log = tmp_path / "wheel.log"
    runs = f"SELECT COUNT(*) FROM {prefix}_recurring_executions WHERE task_key = 'wheel_tick'"

    def fired_twice() -> bool:
        if "AS new_vals ON DUPLICATE KEY" in log.read_text(errors="replace"):
            # The wheel upserts recurring_tasks with MySQL 8's row alias, which MariaDB rejects
            # (error 1064), so its scheduler cannot start there; ours can (see the test below).
            pytest.skip("the wheel 0.4.2's scheduler fails on MariaDB: its upsert uses MySQL 8 syntax (1064)")
        return bool(_scalar(engine, runs) >= 2)

    _eventually(fired_twice, 30, "two runs of the wheel's scheduler", log)
    proc.send_signal(signal.SIGTERM)
    proc.wait(15)
    RecurringTick.seen = []
    qc = quebec.Quebec(db_url, table_name_prefix=prefix, worker_polling_interval=0.05)
    qc.register_job(RecurringTick)
    assert [t.key for t in qc.recurring_tasks()] == ["wheel_tick"]  # the wheel's static row, read by us
    qc.start(spawn=["worker", "dispatcher"])
    try:
        fired = _scalar(engine, runs)
        done = f"SELECT COUNT(*) FROM {prefix}_jobs WHERE finished_at IS NOT NULL"
        _eventually(lambda: _scalar(engine, done) == fired, 20, f"{fired} jobs finished", log)
    finally:
        qc.close()
        engine.dispose()
    assert len(RecurringTick.seen) == fired
    assert all(list(args) == ARGS for _, args in RecurringTick.seen)


@requires_wheel
def test_a_task_our_scheduler_fires_is_run_by_the_wheels_worker(
    db_url: str, prefix: str, tmp_path: Path, wheel: Callable[..., subprocess.Popen[bytes]]
) -> None:
    qc = quebec.Quebec(db_url, table_name_prefix=prefix)
    qc.create_tables()
    qc.register_job(RecurringTick)
    qc.schedule("our_tick", RecurringTick, "every second", args=ARGS, queue="ticks")
    records = tmp_path / "records.jsonl"
    engine = _engine(db_url)
    log = tmp_path / "wheel.log"
    qc.start(spawn=["scheduler"])
    try:
        runs = f"SELECT COUNT(*) FROM {prefix}_recurring_executions WHERE task_key = 'our_tick'"
        _eventually(lambda: _scalar(engine, runs) >= 2, 20, "two runs of our scheduler", log)
    finally:
        qc.stop()
    fired = _scalar(engine, runs)
    wheel(db_url, prefix, "worker,dispatcher", records)
    done = f"SELECT COUNT(*) FROM {prefix}_jobs WHERE finished_at IS NOT NULL"
    _eventually(lambda: _scalar(engine, done) == fired, 30, f"{fired} jobs finished by the wheel", log)
    qc.close()
    engine.dispose()
    lines = [json.loads(line) for line in records.read_text().splitlines()]
    assert len(lines) == fired and len({r["id"] for r in lines}) == fired
    assert all(r["args"] == ARGS for r in lines)


@requires_wheel
def test_the_wheels_scheduler_and_ours_firing_one_task_enqueue_each_run_once(
    db_url: str, prefix: str, tmp_path: Path, wheel: Callable[..., subprocess.Popen[bytes]], monkeypatch: Any
) -> None:
    (tmp_path / "recurring.yml").write_text(RECURRING_YML)
    qc = quebec.Quebec(db_url, table_name_prefix=prefix)
    qc.create_tables()
    qc.register_job(RecurringTick)
    wheel(db_url, prefix, "scheduler", tmp_path / "unused.jsonl")
    monkeypatch.chdir(tmp_path)  # our scheduler reads the same recurring.yml
    engine = _engine(db_url)
    log = tmp_path / "wheel.log"
    runs = f"SELECT COUNT(DISTINCT run_at) FROM {prefix}_recurring_executions"
    qc.start(spawn=["scheduler"])
    try:

        def six_runs() -> bool:
            if "AS new_vals ON DUPLICATE KEY" in log.read_text(errors="replace"):
                pytest.skip("the wheel 0.4.2's scheduler fails on MariaDB: its upsert uses MySQL 8 syntax (1064)")
            return bool(_scalar(engine, runs) >= 6)

        _eventually(six_runs, 30, "six runs", log)
    finally:
        qc.close()
    with engine.connect() as conn:
        per_run = conn.execute(
            text(f"SELECT run_at, COUNT(*) FROM {prefix}_recurring_executions GROUP BY run_at ORDER BY run_at")
        ).all()
        jobs = conn.execute(text(f"SELECT COUNT(*) FROM {prefix}_jobs")).scalar_one()
    engine.dispose()
    assert {n for _, n in per_run} == {1}, per_run
    assert jobs == len(per_run)
