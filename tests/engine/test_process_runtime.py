"""The per-process runtime: built without side effects, one worker per queue.yml entry, stepped by hand."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

import quebec
from conftest import eventually
from quebec.engine.memory import RECYCLE_EXIT
from quebec.engine.runtime import ProcessRuntime
from quebec.engine.signals import Intent
from quebec.store import queries


def _rows(qc: Any) -> list[dict[str, Any]]:
    return qc.db.read(queries.processes)


def test_building_a_runtime_starts_nothing_and_registers_nothing(qc: Any) -> None:
    before = threading.active_count()
    runtime = ProcessRuntime(qc.db, qc.settings, qc.registry, qc.hooks, spawn=None)
    assert threading.active_count() == before
    assert _rows(qc) == []
    assert runtime.workers == []
    assert runtime.status_line() == "quebec-dispatcher+scheduler+worker"


def test_every_workers_entry_runs_in_one_process_with_a_row_of_its_own(
    make_qc: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefix: str
) -> None:
    (tmp_path / "queue.yml").write_text(
        "workers:\n  - queues: alpha\n    threads: 2\n  - queues: [beta, gamma]\n    threads: 1\n", encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    qc = make_qc(name=f"rt{prefix}")
    seen: dict[str, list[int]] = {}

    @qc.register_job
    class Where(quebec.BaseClass):
        def perform(self) -> None:
            seen.setdefault(self.queue_name, []).append(threading.get_ident())

    qc.start(spawn=["worker"])
    try:
        rows = [r for r in _rows(qc) if r["kind"] == "Worker"]
        assert sorted((json.loads(r["metadata"])["queues"], json.loads(r["metadata"])["threads"]) for r in rows) == [
            (["alpha"], 2),
            (["beta", "gamma"], 1),
        ]
        assert qc.worker_threads == 3
        jobs = [Where.set(queue=q).perform_later() for q in ("alpha", "beta", "gamma")]
        eventually(lambda: all(qc.get_job(j.id).state == "finished" for j in jobs))
        # each job ran on a thread of the worker whose queues it is on
        lanes = [{t.ident for t in w.lane._threads} for w in qc._runtime.workers]
        assert set(seen["alpha"]) <= lanes[0]
        assert set(seen["beta"]) | set(seen["gamma"]) <= lanes[1]
    finally:
        qc.stop()
    assert _rows(qc) == []


def test_a_memory_recycle_exits_75_once_its_grace_has_run_out_on_the_runtimes_own_clock(qc: Any) -> None:
    now = [100.0]
    started = threading.Event()
    release = threading.Event()

    @qc.register_job
    class Busy(quebec.BaseClass):
        def perform(self) -> None:
            started.set()
            release.wait(30)

    runtime = ProcessRuntime(qc.db, qc.settings, qc.registry, qc.hooks, spawn=["worker"], monotonic=lambda: now[0])
    runtime.start()
    try:
        Busy.perform_later()
        runtime.wake_workers()
        assert started.wait(10)
        assert runtime.step(Intent.RECYCLE) is False  # quiet, draining: the job still runs
        assert runtime.is_quiet
        now[0] += qc.settings.worker_memory_graceful_timeout + 1
        release.set()
        assert runtime.step(None) is True
        assert runtime.exit_code == RECYCLE_EXIT
    finally:
        release.set()
        runtime.shutdown()
    assert _rows(qc) == []
