"""qc.drain_due() (`--once`): the worker threads, the bounds, TERM, heartbeats, and recovering a killed run."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

import quebec
from conftest import eventually
from quebec.engine.oneshot import DrainReport, StopReason
from quebec.errors import ConfigError
from quebec.store import processes, queries, ready
from quebec.types import JobState, ProcessInfo, QueueSelector


def rows(qc: Any, table: str) -> list[Any]:
    return list(qc.db.read(lambda tx: tx.conn.execute(getattr(tx.tables, table).select()).all()))


def test_jobs_run_on_the_configured_threads_at_once(make_qc: Any) -> None:
    qc = make_qc(worker_threads=3)
    together = threading.Barrier(3, timeout=10)  # broken (and the jobs failed) unless 3 run at once

    @qc.register_job
    class Together(quebec.BaseClass):
        def perform(self) -> None:
            together.wait()

    qc.perform_all_later([Together.build() for _ in range(3)])
    report = qc.drain_due()
    assert (report.finished, report.failed, report.stopped, report.ok) == (3, 0, StopReason.DONE, True)
    assert rows(qc, "claimed_executions") == []


def test_max_seconds_stops_claiming_and_the_running_job_finishes(make_qc: Any) -> None:
    qc = make_qc()
    started = time.monotonic()

    @qc.register_job
    class PastTheBound(quebec.BaseClass):
        def perform(self) -> None:
            while time.monotonic() < started + 0.5:  # ends only once the 0.2 s bound has passed
                time.sleep(0.01)

    jobs = qc.perform_all_later([PastTheBound.build() for _ in range(3)])
    report = qc.drain_due(threads=1, max_seconds=0.2)
    assert (report.finished, report.stopped) == (1, StopReason.MAX_SECONDS)
    assert [qc.get_job(j.id).state for j in jobs] == [JobState.FINISHED, JobState.READY, JobState.READY]
    assert rows(qc, "claimed_executions") == []


def test_term_stops_claiming_and_a_job_still_running_after_shutdown_timeout_is_handed_back(make_qc: Any) -> None:
    qc = make_qc(shutdown_timeout=0.2)
    release = threading.Event()

    @qc.register_job
    class Stuck(quebec.BaseClass):
        def perform(self) -> None:
            os.kill(os.getpid(), signal.SIGTERM)  # as `kill` would, while the job runs
            release.wait(30)

    stuck, waiting = Stuck.perform_later(), Stuck.perform_later()
    previous = signal.getsignal(signal.SIGTERM)
    report = qc.drain_due(threads=1)  # on the main thread: it handles TERM
    assert signal.getsignal(signal.SIGTERM) == previous  # given back
    assert (report.released, report.finished, report.stopped) == (1, 0, StopReason.SIGNAL)
    assert qc.get_job(stuck.id).state == JobState.READY  # handed back: it runs again
    assert qc.get_job(waiting.id).state == JobState.READY  # never claimed
    assert rows(qc, "claimed_executions") == [] and rows(qc, "processes") == []
    release.set()
    eventually(lambda: report.finished == 1)  # the job ended after all; its claim was gone
    assert qc.get_job(stuck.id).state == JobState.READY


def test_a_long_job_keeps_the_drain_row_heartbeating(make_qc: Any) -> None:
    qc = make_qc(process_heartbeat_interval=0.05, process_alive_threshold=5)
    release = threading.Event()

    @qc.register_job
    class Long(quebec.BaseClass):
        def perform(self) -> None:
            release.wait(30)

    job = Long.perform_later()
    result: list[DrainReport] = []
    runner = threading.Thread(target=lambda: result.append(qc.drain_due(threads=1)))
    runner.start()
    try:
        [first] = eventually(lambda: rows(qc, "processes"))
        eventually(lambda: rows(qc, "processes")[0].last_heartbeat_at > first.last_heartbeat_at)
    finally:
        release.set()
        runner.join(10)
    assert result[0].finished == 1 and qc.get_job(job.id).state == JobState.FINISHED


def test_the_claims_of_a_killed_run_are_recovered_and_run_by_the_next_one(make_qc: Any) -> None:
    qc = make_qc()

    @qc.register_job
    class Recovered(quebec.BaseClass):
        def perform(self) -> None:
            pass

    job = Recovered.perform_later()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid on this host that no longer runs, as a kill -9'd run leaves it
    info = ProcessInfo(kind="Worker", name="drain-killed", pid=gone.pid, hostname=socket.gethostname())
    dead = qc.db.transact(processes.register, info=info)
    assert [j.id for j in qc.db.transact(ready.claim, queues=QueueSelector(("*",)), limit=1, process_id=dead)] == [
        job.id
    ]
    report = qc.drain_due()
    assert report.finished == 1 and qc.get_job(job.id).state == JobState.FINISHED
    assert dead not in [p["id"] for p in qc.db.read(queries.processes)]


@pytest.mark.parametrize(
    ("options", "error", "fragment"),
    [
        ({"max_jobs": 0}, ValueError, "max_jobs=0 must be a whole number of at least 1"),
        ({"max_jobs": True}, ValueError, "max_jobs=True must be a whole number"),
        ({"max_seconds": -1}, ValueError, "max_seconds=-1 must be a number of seconds above 0"),
        ({"threads": 0}, ConfigError, "threads="),
    ],
)
def test_bad_bounds_are_refused_in_one_sentence(
    make_qc: Any, options: dict[str, Any], error: type[Exception], fragment: str
) -> None:
    qc = make_qc()
    with pytest.raises(error, match=fragment.replace("(", r"\(")):
        qc.drain_due(**options)
    assert rows(qc, "processes") == []
