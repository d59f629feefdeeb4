"""Shutdown: nothing a worker holds is lost; what did not finish goes back to ready."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

import quebec
from conftest import eventually
from quebec.store import queries


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """Holds blocking jobs until the test opens it; always opened at the end, so no thread lingers."""
    event = threading.Event()
    yield event
    event.set()


def state(qc: quebec.Quebec, job_id: int | None) -> str | None:
    assert job_id is not None
    row = qc.get_job(job_id)
    return None if row is None else str(row.state)


def test_stop_returns_a_job_still_running_after_shutdown_timeout_to_ready(
    make_qc: Callable[..., quebec.Quebec], gate: threading.Event
) -> None:
    qc = make_qc(shutdown_timeout=0.2)
    started: list[int] = []

    @qc.register_job
    class Slow(quebec.BaseClass):
        def perform(self) -> None:
            started.append(self.id)
            gate.wait(30)

    job = Slow.perform_later()
    qc.start(spawn=["worker"])
    eventually(lambda: started)
    qc.stop()
    assert state(qc, job.id) == "ready"
    assert qc.get_job(job.id).process_id is None  # type: ignore[union-attr]
    gate.set()
    qc.start(spawn=["worker"])  # not lost: it runs again
    eventually(lambda: state(qc, job.id) == "finished")
    assert started == [job.id, job.id]


def test_stop_lets_a_job_finish_within_shutdown_timeout(make_qc: Callable[..., quebec.Quebec]) -> None:
    qc = make_qc(shutdown_timeout=10)
    started, proceed = threading.Event(), threading.Event()

    @qc.register_job
    class Brief(quebec.BaseClass):
        def perform(self) -> None:
            started.set()
            proceed.wait(10)

    job = Brief.perform_later()
    qc.start(spawn=["worker"])
    eventually(started.is_set)
    threading.Timer(0.1, proceed.set).start()
    qc.stop()
    assert state(qc, job.id) == "finished"


def test_stop_returns_claimed_jobs_that_have_not_started_to_ready(
    make_qc: Callable[..., quebec.Quebec], gate: threading.Event
) -> None:
    # One thread, busy with the first job; the lane claims ahead (prefetch), so the second
    # job is claimed by this worker but has not started when stop() is called.
    qc = make_qc(shutdown_timeout=0.2, worker_threads=1)
    started: list[str] = []

    @qc.register_job
    class Holder(quebec.BaseClass):
        def perform(self, name: str) -> None:
            started.append(name)
            gate.wait(30)

    busy = Holder.perform_later("busy")
    waiting = Holder.perform_later("waiting")
    qc.start(spawn=["worker"])
    eventually(lambda: started == ["busy"] and state(qc, waiting.id) == "claimed")
    qc.stop()
    assert (state(qc, busy.id), state(qc, waiting.id)) == ("ready", "ready")
    assert started == ["busy"]
    assert qc.db.read(queries.processes) == []
