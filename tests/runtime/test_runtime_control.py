"""Runtime control, as the Rust wheel's: start() signature, quiet(), is_quiet, in_flight_count(),
worker_threads and ping(), on every backend."""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable, Iterator

import pytest

import quebec
from conftest import eventually


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """Holds blocking jobs until the test opens it; always opened at the end, so no thread lingers."""
    event = threading.Event()
    yield event
    event.set()


def held_job(qc: quebec.Quebec, gate: threading.Event) -> tuple[type[quebec.BaseClass], list[int | None]]:
    """A job class that records its id and waits for the gate; and the list of ids started."""
    started: list[int | None] = []

    @qc.register_job
    class Held(quebec.BaseClass):
        def perform(self) -> None:
            started.append(self.id)
            gate.wait(30)

    return Held, started


def state(qc: quebec.Quebec, job_id: int | None) -> str:
    assert job_id is not None
    return str(qc.get_job(job_id).state)


def test_start_and_run_take_the_wheels_keyword_only_arguments() -> None:
    for method in (quebec.Quebec.start, quebec.Quebec.run):
        params = inspect.signature(method).parameters
        assert [p for p in params if p != "self"] == ["create_tables", "control_plane", "spawn", "threads"]
        assert all(params[p].kind is inspect.Parameter.KEYWORD_ONLY for p in params if p != "self")
        assert params["create_tables"].default is False
        assert params["control_plane"].default is None and params["spawn"].default is None


def test_start_returns_the_instance_and_refuses_a_second_start(qc: quebec.Quebec) -> None:
    assert qc.start(spawn=["worker"]) is qc
    with pytest.raises(RuntimeError, match="already running; call qc.stop"):
        qc.start(spawn=["worker"])
    qc.stop()
    assert qc.start(spawn=["worker"]) is qc  # stopped: it may start again


def test_a_spawn_string_is_refused_in_one_sentence(qc: quebec.Quebec) -> None:
    with pytest.raises(ValueError, match=r"spawn='worker' must be a list of component names, e.g. spawn=\['worker'\]"):
        qc.start(spawn="worker")


def test_quiet_stops_claiming_while_the_running_job_finishes(
    make_qc: Callable[..., quebec.Quebec], gate: threading.Event, caplog: pytest.LogCaptureFixture
) -> None:
    # One thread, two held jobs: one runs, one waits in the lane, so the lane is full and no
    # claim is in flight when quiet() is called. quiet_then_exit ends the runtime once it is
    # idle: a clear point after which a worker that still claimed would have taken `later`.
    qc = make_qc(quiet_then_exit=True, worker_threads=1)
    Held, started = held_job(qc, gate)
    first, second = Held.perform_later(), Held.perform_later()
    qc.start(spawn=["worker"])
    eventually(lambda: started == [first.id] and state(qc, second.id) == "claimed")
    assert not qc.is_quiet
    with caplog.at_level(logging.INFO, logger="quebec"):
        qc.quiet()
        qc.quiet()  # idempotent
    assert qc.is_quiet
    later = Held.perform_later()
    gate.set()
    qc.wait(10)
    assert state(qc, first.id) == "finished"
    # The claimed-but-unstarted job either ran or was handed back; never left claimed.
    assert state(qc, second.id) in ("finished", "ready")
    assert state(qc, later.id) == "ready"
    assert later.id not in started
    assert [r.message for r in caplog.records].count("supervisor.quiet: no longer claiming") == 1


def test_quiet_before_start_makes_the_runtime_start_quiet(make_qc: Callable[..., quebec.Quebec]) -> None:
    qc = make_qc(quiet_then_exit=True)

    @qc.register_job
    class Noop(quebec.BaseClass):
        def perform(self) -> None:
            pass

    job = Noop.perform_later()
    qc.quiet()
    assert qc.is_quiet
    qc.start(spawn=["worker"])
    assert qc.is_quiet
    qc.wait(10)  # quiet and idle from the start: it exits without claiming
    assert state(qc, job.id) == "ready"


def test_in_flight_count_is_the_number_of_busy_worker_threads(
    make_qc: Callable[..., quebec.Quebec], gate: threading.Event
) -> None:
    qc = make_qc(worker_threads=3)
    Held, started = held_job(qc, gate)
    assert qc.in_flight_count() == 0  # not running
    jobs = [Held.perform_later() for _ in range(5)]
    qc.start(spawn=["worker"])
    eventually(lambda: len(started) == 3)
    assert qc.in_flight_count() == 3  # five ready, three threads: the others wait
    gate.set()
    eventually(lambda: all(state(qc, j.id) == "finished" for j in jobs))
    eventually(lambda: qc.in_flight_count() == 0)


def test_worker_threads_is_the_effective_thread_count(make_qc: Callable[..., quebec.Quebec]) -> None:
    qc = make_qc(worker_threads=2)
    assert qc.worker_threads == 2
    qc.start(spawn=["worker"], threads=5)
    assert qc.worker_threads == 5
    qc.stop()
    assert qc.worker_threads == 2


def test_ping_is_true_when_the_database_answers(qc: quebec.Quebec) -> None:
    assert qc.ping() is True
