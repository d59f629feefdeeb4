"""SIGTERM to a worker process (plain, and under the fork supervisor) while a Continuable job
runs: the job stops at its next checkpoint and ends ready again with its progress; no claim is
left behind; the next worker resumes it from the saved cursor."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from integration_support import (
    Procs,
    count,
    engine_for,
    import_package,
    start_worker,
    stop_gracefully,
    until,
    worker_env,
)
from sqlalchemy import text

pytestmark = pytest.mark.slow

JOB_PACKAGE = """
import json
import os

import quebec


class Walk(quebec.BaseClass, quebec.Continuable):
    def perform(self, marks):
        with self.step("setup"):
            pass
        with self.step("walk", start=0) as step:
            first = step.cursor
            end = first + 3 if self.resumptions else 10**9
            for i in range(first, end):
                step.advance(from_=i)
                if i == 2 and not self.resumptions:
                    open(os.path.join(marks, "reached"), "w").close()
            if self.resumptions:  # written whole, then renamed: the test may look at any moment
                with open(os.path.join(marks, "resumed.tmp"), "w") as f:
                    json.dump({"cursor": first, "resumed": step.resumed, "pid": os.getpid()}, f)
                os.replace(os.path.join(marks, "resumed.tmp"), os.path.join(marks, "resumed"))
"""


@pytest.mark.parametrize("supervisor", [False, True], ids=["plain", "fork_supervisor"])
def test_sigterm_interrupts_a_continuable_job_and_the_next_worker_resumes_it(
    db_url: str, prefix: str, tmp_path: Path, procs: Procs, monkeypatch: pytest.MonkeyPatch, supervisor: bool
) -> None:
    import quebec

    package = import_package(tmp_path, "steps_pkg", JOB_PACKAGE, monkeypatch)
    marks = tmp_path / "marks"
    marks.mkdir()
    qc = quebec.Quebec(db_url, table_name_prefix=prefix)
    qc.create_tables()
    qc.register_job(package.Walk)
    job = package.Walk.perform_later(str(marks))
    extra = {"QUEBEC_SUPERVISOR": "1"} if supervisor else {}
    env = worker_env(db_url, prefix, tmp_path, QUEBEC_SHUTDOWN_TIMEOUT="30", **extra)
    engine = engine_for(db_url)
    try:
        first = start_worker(procs, "steps_pkg", env, tmp_path, "first")
        until(lambda: (marks / "reached").exists(), 60, "the job's third iteration", procs, [first])
        assert stop_gracefully(first, procs) == 0, procs.describe()

        def rows() -> list[Any]:
            with engine.connect() as conn:
                sql = f"SELECT id, arguments, finished_at FROM {prefix}_jobs WHERE active_job_id = :a ORDER BY id"
                return list(conn.execute(text(sql), {"a": job.active_job_id}))

        runs = rows()
        assert len(runs) == 2 and runs[0].finished_at is not None and runs[1].finished_at is None, procs.describe()
        saved = json.loads(runs[1].arguments)
        assert saved["resumptions"] == 1 and saved["continuation"]["completed"] == ["setup"]
        name, cursor = saved["continuation"]["current"]
        assert name == "walk" and cursor >= 3
        assert count(engine, f"SELECT COUNT(*) FROM {prefix}_claimed_executions") == 0
        ready = f"SELECT COUNT(*) FROM {prefix}_ready_executions WHERE job_id = :j"
        assert count(engine, ready, j=runs[1].id) == 1

        second = start_worker(procs, "steps_pkg", env, tmp_path, "second")
        until(lambda: (marks / "resumed").exists(), 60, "the resumed execution", procs, [second])
        resumed = json.loads((marks / "resumed").read_text())
        assert (resumed["cursor"], resumed["resumed"]) == (cursor, True)
        done = f"SELECT finished_at FROM {prefix}_jobs WHERE id = :j"
        until(lambda: _scalar(engine, done, j=runs[1].id) is not None, 30, "the resumed job to finish", procs, [second])
        assert stop_gracefully(second, procs) == 0, procs.describe()
    finally:
        engine.dispose()
        qc.close()


def _scalar(engine: Any, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()
