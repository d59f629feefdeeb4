"""Continuable jobs across Quebec and the Rust wheel (quebec 0.4.2) on one database.

(a) the wheel's worker is stopped (SIGTERM) while a job is in its loop step: it enqueues the
job again with its progress, and our worker resumes it from the wheel's cursor;
(b) our worker is stopped the same way, and the wheel's worker resumes from ours.
Both sides run the same job: a "setup" step, then a "loop" step whose cursor advances once
per iteration; a resumed execution does three more iterations and ends.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import quebec
from conftest import eventually
from quebec.types import JobState

pytestmark = pytest.mark.slow

RS_PYTHON = os.environ.get("QUEBEC_RS_PYTHON", "")
requires_wheel = pytest.mark.skipif(
    not (RS_PYTHON and os.path.isfile(RS_PYTHON) and os.access(RS_PYTHON, os.X_OK)),
    reason="QUEBEC_RS_PYTHON does not name the python of a venv with quebec==0.4.2",
)

# sys.argv: url, prefix, mode ("enqueue" | "work"), records path.
WHEEL = """
import json
import os
import sys
import time

import quebec

url, prefix, mode, records = sys.argv[1:5]
qc = quebec.Quebec(url, table_name_prefix=prefix)
qc.create_tables()


def record(**fields):
    with open(records, "a", encoding="utf-8") as f:
        f.write(json.dumps({"side": "wheel", **fields}) + "\\n")


class StepsJob(quebec.BaseClass, quebec.Continuable):
    def perform(self, total):
        with self.step("setup") as step:
            record(step="setup", skip=step.skip, resumptions=self.resumptions)
        with self.step("loop", start=0) as step:
            first = step.cursor
            record(step="loop", cursor=first, resumed=step.resumed, resumptions=self.resumptions)
            end = min(total, first + 3) if self.resumptions else total
            for i in range(first, end):
                time.sleep(0.002)
                step.advance(from_=i)
                if i == first + 2:
                    record(step="reached", cursor=step.cursor)
        record(step="done")


qc.register_job(StepsJob)
if mode == "enqueue":
    print(StepsJob.perform_later(qc, 10**7).id)
else:
    qc.run(spawn=["worker", "dispatcher"])
"""


def record(records: Path, **fields: Any) -> None:
    with records.open("a", encoding="utf-8") as f:
        f.write(json.dumps({"side": "ours", **fields}) + "\n")


class StepsJob(quebec.BaseClass, quebec.Continuable):
    records: Path
    reached = threading.Event()

    def perform(self, total: int) -> None:
        with self.step("setup") as step:
            record(self.records, step="setup", skip=step.skip, resumptions=self.resumptions)
        with self.step("loop", start=0) as step:
            first = step.cursor
            record(self.records, step="loop", cursor=first, resumed=step.resumed, resumptions=self.resumptions)
            end = min(total, first + 3) if self.resumptions else total
            for i in range(first, end):
                step.advance(from_=i)
                if i == first + 2:
                    StepsJob.reached.set()
        record(self.records, step="done")


def lines(records: Path) -> list[dict[str, Any]]:
    if not records.exists():
        return []
    return [json.loads(line) for line in records.read_text(encoding="utf-8").splitlines() if line.strip()]


def runs_of(qc: Any) -> list[tuple[int, dict[str, Any], JobState | None]]:
    jobs = qc.db.tables.jobs

    def read(tx: Any) -> list[Any]:
        return list(tx.conn.execute(select(jobs.c.id, jobs.c.arguments).order_by(jobs.c.id)))

    out = []
    for row in qc.db.read(read):
        found = qc.get_job(row.id)
        out.append((row.id, json.loads(row.arguments), None if found is None else found.state))
    return out


@pytest.fixture
def wheel(tmp_path: Path, db_url: str, prefix: str) -> Iterator[Any]:
    script = tmp_path / "wheel_steps.py"
    script.write_text(textwrap.dedent(WHEEL), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUEBEC_")}
    started: list[subprocess.Popen[bytes]] = []

    def run(mode: str, records: Path) -> subprocess.Popen[bytes]:
        log = (tmp_path / f"wheel-{mode}.log").open("ab")
        proc = subprocess.Popen(
            [RS_PYTHON, str(script), db_url, prefix, mode, str(records)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE if mode == "enqueue" else log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        started.append(proc)
        return proc

    yield run
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _wheel_log(tmp_path: Path) -> str:
    return "".join(p.read_text(errors="replace")[-3000:] for p in sorted(tmp_path.glob("wheel-*.log")))


@requires_wheel
def test_a_job_the_wheel_interrupted_is_resumed_here_from_the_wheels_cursor(
    make_qc: Any, wheel: Any, tmp_path: Path
) -> None:
    records = tmp_path / "records.jsonl"
    qc = make_qc()
    StepsJob.records = records
    qc.register_job(StepsJob)
    enqueue = wheel("enqueue", records)
    out, _ = enqueue.communicate(timeout=60)
    assert enqueue.returncode == 0, _wheel_log(tmp_path)
    worker = wheel("work", records)
    eventually(lambda: any(r["step"] == "reached" for r in lines(records)), within=60)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(60) == 0, _wheel_log(tmp_path)
    runs = runs_of(qc)
    assert [s for _, _, s in runs] in ([JobState.FINISHED, JobState.SCHEDULED], [JobState.FINISHED, JobState.READY])
    saved = runs[1][1]["continuation"]
    assert saved["completed"] == ["setup"] and saved["current"][0] == "loop", saved
    cursor = saved["current"][1]
    assert cursor >= 3 and runs[1][1]["resumptions"] == 1

    executions = qc.drain_batch(1)
    assert executions, "the wheel's resumed job was not ready here"
    executions[0].perform()
    ours = [r for r in lines(records) if r["side"] == "ours"]
    assert ours[:2] == [
        {"side": "ours", "step": "setup", "skip": True, "resumptions": 1},
        {"side": "ours", "step": "loop", "cursor": cursor, "resumed": True, "resumptions": 1},
    ]
    assert ours[-1]["step"] == "done"
    assert state_of(qc, runs[1][0]) == JobState.FINISHED


@requires_wheel
def test_a_job_interrupted_here_is_resumed_by_the_wheel_from_our_cursor(
    make_qc: Any, wheel: Any, tmp_path: Path
) -> None:
    records = tmp_path / "records.jsonl"
    qc = make_qc(shutdown_timeout=30)
    StepsJob.records = records
    StepsJob.reached = threading.Event()
    qc.register_job(StepsJob)
    job = StepsJob.perform_later(10**7)
    qc.start(spawn=["worker"], threads=1)
    try:
        assert StepsJob.reached.wait(30), "our worker never got to the third iteration"
    finally:
        qc.stop(timeout=30)
    runs = runs_of(qc)
    assert [s for _, _, s in runs] == [JobState.FINISHED, JobState.READY]
    saved = runs[1][1]["continuation"]
    cursor = saved["current"][1]
    assert saved["completed"] == ["setup"] and saved["current"][0] == "loop" and cursor >= 3

    worker = wheel("work", records)
    eventually(lambda: any(r["side"] == "wheel" and r["step"] == "done" for r in lines(records)), within=60)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(60) == 0, _wheel_log(tmp_path)
    theirs = [r for r in lines(records) if r["side"] == "wheel"]
    assert theirs[:2] == [
        {"side": "wheel", "step": "setup", "skip": True, "resumptions": 1},
        {"side": "wheel", "step": "loop", "cursor": cursor, "resumed": True, "resumptions": 1},
    ]
    assert state_of(qc, runs[1][0]) == JobState.FINISHED
    assert qc.get_job(job.id).state == JobState.FINISHED


def state_of(qc: Any, job_id: int) -> JobState | None:
    found = qc.get_job(job_id)
    return None if found is None else found.state
