"""Signals sent to a real `python -m quebec <pkg>` process, on every backend.

TERM / INT: graceful. In-flight jobs that finish within shutdown_timeout finish; a job
still running after it goes back to ready (it runs again; never lost, never failed);
claimed jobs that had not started go back to ready; exit 0; nothing left registered.
QUIT: exit at once (os._exit(0), so the exit status is 0); the running job stays
claimed until another worker prunes the dead pid and runs it again.
USR1 / TSTP with QUEBEC_QUIET_THEN_EXIT=1: stop claiming, finish the in-flight job even
past shutdown_timeout, exit 0.

The job writes a marker file named `<tag>.<pid>.started` / `.finished`, so the test
knows when a job is running, and which process ran it, without sleeping.
"""

from __future__ import annotations

import importlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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
from sqlalchemy.engine import Engine

pytestmark = pytest.mark.slow

JOBS = """
import os
import time
from pathlib import Path

import quebec


def _mark(name):
    marks = Path(os.environ["QUEBEC_TEST_MARKS"])
    tmp = marks / f".{name}.tmp"
    tmp.write_text(str(os.getpid()), encoding="utf-8")
    os.replace(tmp, marks / name)


class Nap(quebec.BaseClass):
    def perform(self, tag, seconds):
        _mark(f"{tag}.{os.getpid()}.started")
        time.sleep(seconds)
        _mark(f"{tag}.{os.getpid()}.finished")


class OnceNap(Nap):
    at_most_once = True
"""


@dataclass
class World:
    qc: Any
    nap: Any
    once: Any
    package: str
    prefix: str
    env: dict[str, str]
    engine: Engine
    marks: Path
    procs: Procs
    tmp_path: Path

    def start(self, name: str = "worker", **env: str) -> subprocess.Popen[bytes]:
        return start_worker(self.procs, self.package, {**self.env, **env}, self.tmp_path, name)

    def pids(self, tag: str, phase: str) -> list[int]:
        """The pids that reached `phase` ("started" / "finished") of the job tagged `tag`."""
        return sorted(int(p.name.split(".")[1]) for p in self.marks.glob(f"{tag}.*.{phase}"))

    def state(self, job: Any) -> str:
        row = self.qc.get_job(job.id)
        return "missing" if row is None else str(row.state)

    def count(self, table: str, where: str = "1 = 1") -> int:
        return count(self.engine, f"SELECT COUNT(*) FROM {self.prefix}_{table} WHERE {where}")

    def assert_clean(self, failed: int = 0) -> None:
        assert self.count("claimed_executions") == 0, "claimed rows left behind"
        assert self.count("processes") == 0, "processes rows left behind"
        assert self.count("failed_executions") == failed, "failed jobs"


@pytest.fixture
def world(
    db_url: str, prefix: str, make_qc: Callable[..., Any], procs: Procs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    package = f"signal_jobs_{prefix}"
    write_package(tmp_path, package, JOBS)
    marks = tmp_path / "marks"
    marks.mkdir()
    qc = make_qc()  # creates the tables before a worker starts
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module(package)
    monkeypatch.setitem(sys.modules, package, module)  # removed again at teardown
    nap = qc.register_job(module.Nap)
    once = qc.register_job(module.OnceNap)
    env = worker_env(db_url, prefix, tmp_path, QUEBEC_TEST_MARKS=str(marks))
    engine = engine_for(db_url)
    try:
        yield World(qc, nap, once, package, prefix, env, engine, marks, procs, tmp_path)
    finally:
        procs.kill_all()
        engine.dispose()


def _exit_code(proc: subprocess.Popen[bytes], within: float, world: World) -> int:
    try:
        return proc.wait(within)
    except subprocess.TimeoutExpired:
        pytest.fail(f"pid {proc.pid} still running {within}s after the signal\n{world.procs.describe()}")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_graceful_signal_lets_short_jobs_finish_and_hands_back_the_job_outliving_shutdown_timeout(
    world: World, signum: signal.Signals
) -> None:
    # Two threads: "long" and "short" run, "waiting" is claimed ahead (prefetch) or still ready.
    long, short, waiting = world.qc.perform_all_later(
        [world.nap.build("long", 120), world.nap.build("short", 1.0), world.nap.build("waiting", 0)]
    )
    proc = world.start(QUEBEC_WORKER_THREADS="2", QUEBEC_SHUTDOWN_TIMEOUT="3")
    until(
        lambda: world.pids("long", "started") and world.pids("short", "started"),
        30,
        "the long and the short job to start",
        world.procs,
        alive=[proc],
    )

    signalled = time.monotonic()
    proc.send_signal(signum)
    rc = _exit_code(proc, 20, world)
    took = time.monotonic() - signalled

    assert rc == 0, world.procs.describe()
    assert world.pids("short", "finished") == [proc.pid], "the short in-flight job did not finish"
    assert world.state(short) == "finished"
    assert world.pids("long", "finished") == []
    assert world.state(long) == "ready", "a job outliving shutdown_timeout must go back to ready"
    assert world.pids("waiting", "started") == []
    assert world.state(waiting) == "ready"
    world.assert_clean()
    assert world.count("ready_executions") == 2
    assert "Traceback" not in world.procs.output(proc), world.procs.output(proc)
    assert took < 3 + 10, f"shutdown took {took:.1f}s with shutdown_timeout=3"


def _quit_while_running(world: World, job: Any, tag: str) -> tuple[subprocess.Popen[bytes], int, float]:
    """Start a worker, wait for `job` to run, send QUIT; returns the process, its exit status and
    how long it took to exit."""
    first = world.start("first", QUEBEC_WORKER_THREADS="1", QUEBEC_SHUTDOWN_TIMEOUT="10")
    until(lambda: world.pids(tag, "started"), 30, "the job to start", world.procs, alive=[first])
    signalled = time.monotonic()
    first.send_signal(signal.SIGQUIT)
    rc = _exit_code(first, 5, world)
    took = time.monotonic() - signalled
    assert world.pids(tag, "finished") == []
    assert world.state(job) == "claimed", "the job of a QUIT process stays claimed until pruned"
    assert world.count("processes", f"pid = {first.pid}") >= 1
    return first, rc, took


def test_quit_exits_at_once_and_a_second_worker_prunes_the_dead_pid_and_runs_its_job(world: World) -> None:
    job = world.nap.perform_later("quit", 3)
    first, rc, took = _quit_while_running(world, job, "quit")
    # QUIT leaves through os._exit(0): status 0, no shutdown, no deregistering.
    assert rc == 0, world.procs.describe()
    assert took < 2.0, f"QUIT took {took:.2f}s; it must not wait for the job or shutdown_timeout"

    recovering = time.monotonic()
    second = world.start("second", QUEBEC_WORKER_THREADS="1", QUEBEC_PROCESS_HEARTBEAT_INTERVAL="1")
    until(
        lambda: world.count("processes", f"pid = {first.pid}") == 0,
        20,
        "the dead pid's processes rows to be pruned",
        world.procs,
        alive=[second],
    )
    pruned = time.monotonic() - recovering
    until(
        lambda: world.state(job) == "finished",
        30,
        "the second worker to run the recovered job",
        world.procs,
        alive=[second],
    )
    recovered = time.monotonic() - recovering

    assert world.pids("quit", "started") == sorted([first.pid, second.pid])
    assert world.pids("quit", "finished") == [second.pid]
    assert stop_gracefully(second, world.procs) == 0, world.procs.describe()
    world.assert_clean()
    print(
        f"\n[{world.qc.db.dialect.name}] QUIT rc={rc} in {took:.2f}s; dead pid pruned {pruned:.2f}s and job "
        f"finished {recovered:.2f}s after the second worker started"
    )


def test_quit_then_pruning_fails_an_at_most_once_job_instead_of_running_it_again(world: World) -> None:
    job = world.once.perform_later("once", 3)
    first, rc, _ = _quit_while_running(world, job, "once")
    assert rc == 0, world.procs.describe()

    second = world.start("second", QUEBEC_WORKER_THREADS="1", QUEBEC_PROCESS_HEARTBEAT_INTERVAL="1")
    until(lambda: world.state(job) == "failed", 20, "the pruned at-most-once job to fail", world.procs, alive=[second])
    error = world.qc.get_job(job.id).error
    assert error is not None and error["exception_class"] == "ProcessPrunedError", error
    assert world.pids("once", "started") == [first.pid], "an at-most-once job ran twice"
    assert stop_gracefully(second, world.procs) == 0, world.procs.describe()
    assert world.pids("once", "started") == [first.pid]
    world.assert_clean(failed=1)


def test_a_second_term_skips_the_rest_of_shutdown_timeout(world: World) -> None:
    # One thread: "long" runs, "pending" is claimed ahead and handed back at the first TERM,
    # which the log line tells us; the second TERM then ends the 60 s grace period.
    long, pending = world.qc.perform_all_later([world.nap.build("long", 120), world.nap.build("pending", 0)])
    proc = world.start(QUEBEC_WORKER_THREADS="1", QUEBEC_SHUTDOWN_TIMEOUT="60")
    until(
        lambda: world.pids("long", "started") and world.state(pending) == "claimed",
        30,
        "the long job to run and the next one to be claimed",
        world.procs,
        alive=[proc],
    )
    signalled = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    until(
        lambda: "job.released count=1" in world.procs.output(proc),
        10,
        "the first TERM to hand back the unstarted job",
        world.procs,
        alive=[proc],
    )
    proc.send_signal(signal.SIGTERM)
    rc = _exit_code(proc, 20, world)
    took = time.monotonic() - signalled

    assert rc == 0, world.procs.describe()
    assert took < 15, f"the second TERM did not cut the 60 s grace period short ({took:.1f}s)"
    assert world.state(long) == "ready"
    assert world.state(pending) == "ready"
    assert world.pids("pending", "started") == []
    world.assert_clean()


def test_term_does_not_hand_back_a_running_at_most_once_job_to_run_again(world: World) -> None:
    job = world.once.perform_later("once-term", 120)
    proc = world.start(QUEBEC_WORKER_THREADS="1", QUEBEC_SHUTDOWN_TIMEOUT="1")
    until(lambda: world.pids("once-term", "started"), 30, "the job to start", world.procs, alive=[proc])
    proc.send_signal(signal.SIGTERM)
    assert _exit_code(proc, 20, world) == 0, world.procs.describe()
    assert world.count("processes") == 0
    assert world.count("claimed_executions") == 0
    # It started and was cut short: running it again would break "never run twice".
    assert world.state(job) == "failed", f"at-most-once job left {world.state(job)}, so it will run again"


@pytest.mark.parametrize("signum", [signal.SIGUSR1, signal.SIGTSTP], ids=["USR1", "TSTP"])
def test_quiet_then_exit_stops_claiming_and_exits_once_the_in_flight_job_is_done(
    world: World, signum: signal.Signals
) -> None:
    inflight = world.nap.perform_later("inflight", 3)
    proc = world.start(QUEBEC_WORKER_THREADS="2", QUEBEC_SHUTDOWN_TIMEOUT="1", QUEBEC_QUIET_THEN_EXIT="1")
    until(lambda: world.pids("inflight", "started"), 30, "the job to start", world.procs, alive=[proc])

    signalled = time.monotonic()
    proc.send_signal(signum)
    until(
        lambda: "supervisor.quiet" in world.procs.output(proc), 10, "the worker to go quiet", world.procs, alive=[proc]
    )
    later = world.nap.perform_later("later", 0)
    rc = _exit_code(proc, 20, world)
    took = time.monotonic() - signalled

    assert rc == 0, world.procs.describe()
    assert world.pids("inflight", "finished") == [proc.pid], "the in-flight job must finish, past shutdown_timeout"
    assert world.state(inflight) == "finished"
    assert world.pids("later", "started") == [], "a quiet worker claimed a job"
    assert world.state(later) == "ready"
    world.assert_clean()
    assert took < 3 + 10, f"quiet_then_exit took {took:.1f}s to exit after a 3 s job"
    assert "Traceback" not in world.procs.output(proc), world.procs.output(proc)
