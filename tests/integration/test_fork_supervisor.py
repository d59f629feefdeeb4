"""QUEBEC_SUPERVISOR=1: the fork supervisor runs queue.yml's plan as child processes and keeps it running."""

from __future__ import annotations

import contextlib
import os
import signal
import time
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
from sqlalchemy import text
from sqlalchemy.engine import Engine

pytestmark = pytest.mark.slow

JOB_PACKAGE = """
import os
import time

import quebec


class Chunk(quebec.BaseClass):
    def perform(self, n, marks):
        open(os.path.join(marks, f"{n}-{os.getpid()}"), "w").close()
        time.sleep(0.3)
"""

QUEUE_YML = """
workers:
  - queues: ["*"]
    threads: 2
    processes: 2
dispatchers:
  - polling_interval: 0.2
"""


def _children(engine: Engine, prefix: str) -> list[tuple[str, int, int | None]]:
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT kind, pid, supervisor_id FROM {prefix}_processes ORDER BY id"))
        return [(r.kind, r.pid, r.supervisor_id) for r in rows]


def _at_least(rows: list[Any], n: int) -> list[Any] | None:
    return rows if len(rows) >= n else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_the_supervisor_forks_the_plan_replaces_a_killed_child_and_stops_cleanly(
    db_url: str,
    prefix: str,
    make_qc: Callable[..., Any],
    procs: Procs,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = import_package(tmp_path, f"fork_jobs_{prefix}", JOB_PACKAGE, monkeypatch)
    (tmp_path / "queue.yml").write_text(QUEUE_YML)
    marks = tmp_path / "marks"
    marks.mkdir()
    qc = make_qc()
    qc.register_job(module.Chunk)
    jobs = [module.Chunk.perform_later(n, str(marks)) for n in range(40)]
    engine = engine_for(db_url)
    supervisor = start_worker(
        procs, module.__name__, worker_env(db_url, prefix, tmp_path, QUEBEC_SUPERVISOR="1"), tmp_path, "supervisor"
    )
    try:
        rows = until(
            lambda: _at_least(_children(engine, prefix), 5),
            30,
            "the supervisor and its four children to register",
            procs,
            alive=[supervisor],
        )
        [(_, supervisor_pid, _)] = [r for r in rows if r[0] == "Supervisor"]
        assert supervisor_pid == supervisor.pid
        children = [r for r in rows if r[0] != "Supervisor"]
        assert sorted(k for k, _, _ in children) == ["Dispatcher", "Scheduler", "Worker", "Worker"]
        assert len({s for _, _, s in children}) == 1 and children[0][2] is not None
        worker_pids = {p for k, p, _ in children if k == "Worker"}
        assert all(p != supervisor.pid for p in worker_pids)

        # SIGKILL a busy worker child: a new one takes its place and its jobs run again.
        until(lambda: len(list(marks.iterdir())) >= 2, 30, "jobs to start", procs, alive=[supervisor])
        victim = next(iter(worker_pids))
        os.kill(victim, signal.SIGKILL)
        until(
            lambda: {p for k, p, _ in _children(engine, prefix) if k == "Worker"} - worker_pids,
            30,
            "a new worker child",
            procs,
            alive=[supervisor],
        )
        until(
            lambda: count(engine, f"SELECT COUNT(*) FROM {prefix}_jobs WHERE finished_at IS NOT NULL") == len(jobs),
            60,
            "every job to finish",
            procs,
            alive=[supervisor],
        )
        # HUP: a rolling restart replaces every child, new ones first.
        before = {p for k, p, _ in _children(engine, prefix) if k != "Supervisor"}
        supervisor.send_signal(signal.SIGHUP)
        until(
            lambda: (
                _at_least([p for k, p, _ in _children(engine, prefix) if k != "Supervisor" and p not in before], 4)
                and not before & {p for _, p, _ in _children(engine, prefix)}
            ),
            30,
            "four new children and the old ones gone",
            procs,
            alive=[supervisor],
        )
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(30) == 0, procs.describe()
        assert count(engine, f"SELECT COUNT(*) FROM {prefix}_claimed_executions") == 0
        assert count(engine, f"SELECT COUNT(*) FROM {prefix}_failed_executions") == 0
        assert count(engine, f"SELECT COUNT(*) FROM {prefix}_processes") == 0
    finally:
        engine.dispose()


def test_children_exit_by_themselves_when_the_supervisor_is_killed(
    db_url: str,
    prefix: str,
    make_qc: Callable[..., Any],
    procs: Procs,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = import_package(tmp_path, f"orphan_jobs_{prefix}", JOB_PACKAGE, monkeypatch)
    (tmp_path / "queue.yml").write_text(QUEUE_YML)
    make_qc()
    engine = engine_for(db_url)
    supervisor = start_worker(
        procs, module.__name__, worker_env(db_url, prefix, tmp_path, QUEBEC_SUPERVISOR="1"), tmp_path, "supervisor"
    )
    child_pids: list[int] = []
    try:
        rows = until(
            lambda: _at_least(_children(engine, prefix), 4),
            30,
            "the supervisor and its children to register",
            procs,
            alive=[supervisor],
        )
        child_pids = [p for k, p, _ in rows if k != "Supervisor"]
        supervisor.kill()
        supervisor.wait(10)
        deadline = time.monotonic() + 20
        while any(_alive(p) for p in child_pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [p for p in child_pids if _alive(p)], "children outlived their supervisor"
    finally:
        engine.dispose()
        for pid in child_pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
