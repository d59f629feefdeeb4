"""QUEBEC_WORKER_MAX_RSS_MB: a worker whose memory stays over the limit drains and exits 75."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from integration_support import (
    Procs,
    count,
    engine_for,
    import_package,
    start_worker,
    until,
    worker_env,
)

from quebec.engine.memory import RECYCLE_EXIT, MemoryWatch

JOB_PACKAGE = """
import time

import quebec

HELD = []


class Hog(quebec.BaseClass):
    def perform(self):
        HELD.append(bytearray(300 * 1024 * 1024))  # kept: the leak the limit is for
        time.sleep(0.5)


class Small(quebec.BaseClass):
    def perform(self):
        time.sleep(0.05)
"""


@pytest.mark.slow
def test_a_worker_over_its_memory_limit_goes_quiet_drains_and_exits_75(
    db_url: str,
    prefix: str,
    make_qc: Callable[..., Any],
    procs: Procs,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = import_package(tmp_path, f"hog_jobs_{prefix}", JOB_PACKAGE, monkeypatch)
    qc = make_qc()
    qc.register_job(module.Hog)
    qc.register_job(module.Small)
    hog = module.Hog.perform_later()
    smalls = [module.Small.perform_later() for _ in range(200)]
    env = worker_env(
        db_url,
        prefix,
        tmp_path,
        QUEBEC_WORKER_THREADS="1",
        QUEBEC_WORKER_MAX_RSS_MB="250",
        QUEBEC_WORKER_MEMORY_CHECK_INTERVAL="0.1",
        QUEBEC_WORKER_MEMORY_RECYCLE_CONFIRMATIONS="2",
    )
    worker = start_worker(procs, module.__name__, env, tmp_path)
    try:
        code = worker.wait(60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the worker did not recycle itself within 60s\n{procs.describe()}")
    assert code == RECYCLE_EXIT, procs.describe()
    output = procs.output(worker)
    assert "worker.memory_recycle limit_mb=250" in output and "supervisor.recycled" in output
    engine = engine_for(db_url)
    try:
        assert count(engine, f"SELECT COUNT(*) FROM {prefix}_claimed_executions") == 0
        assert count(engine, f"SELECT COUNT(*) FROM {prefix}_processes") == 0
        finished = count(engine, f"SELECT COUNT(*) FROM {prefix}_jobs WHERE finished_at IS NOT NULL")
        ready = count(engine, f"SELECT COUNT(*) FROM {prefix}_ready_executions")
        assert finished + ready == 1 + len(smalls) and ready > 0, (finished, ready)
    finally:
        engine.dispose()
    assert qc.get_job(hog.id).state == "finished"


def test_one_sample_over_the_limit_is_not_enough_and_the_count_restarts_below_it() -> None:
    samples = iter([300.0, 100.0, 300.0, 300.0, 300.0])
    fired: list[float] = []
    watch = MemoryWatch(limit_mb=200, every=1.0, confirmations=2, on_over=fired.append, sample=lambda: next(samples))
    assert [watch.run_once() for _ in range(3)] == [1.0, 1.0, 1.0]
    assert fired == []
    watch.run_once()
    assert fired == [300.0] and watch.stopping


QUEUE_YML = """
workers:
  - queues: ["*"]
    threads: 1
    processes: 1
"""


@pytest.mark.slow
def test_under_the_fork_supervisor_a_recycled_child_is_replaced_and_the_queue_finishes(
    db_url: str,
    prefix: str,
    make_qc: Callable[..., Any],
    procs: Procs,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = import_package(tmp_path, f"hog_fork_jobs_{prefix}", JOB_PACKAGE, monkeypatch)
    (tmp_path / "queue.yml").write_text(QUEUE_YML)
    qc = make_qc()
    qc.register_job(module.Hog)
    qc.register_job(module.Small)
    module.Hog.perform_later()
    smalls = [module.Small.perform_later() for _ in range(60)]
    env = worker_env(
        db_url,
        prefix,
        tmp_path,
        QUEBEC_SUPERVISOR="1",
        QUEBEC_WORKER_MAX_RSS_MB="250",
        QUEBEC_WORKER_MEMORY_CHECK_INTERVAL="0.1",
        QUEBEC_WORKER_MEMORY_RECYCLE_CONFIRMATIONS="2",
    )
    supervisor = start_worker(procs, module.__name__, env, tmp_path, "supervisor")
    engine = engine_for(db_url)
    try:
        until(
            lambda: (
                count(engine, f"SELECT COUNT(*) FROM {prefix}_jobs WHERE finished_at IS NOT NULL") == 1 + len(smalls)
            ),
            60,
            "the queue to finish after the recycle",
            procs,
            alive=[supervisor],
        )
        output = procs.output(supervisor)
        assert "supervisor.recycle child=worker[0].0" in output and "exited 75" in output, output[-3000:]
        supervisor.terminate()
        assert supervisor.wait(30) == 0
        assert count(engine, f"SELECT COUNT(*) FROM {prefix}_claimed_executions") == 0
    finally:
        engine.dispose()
