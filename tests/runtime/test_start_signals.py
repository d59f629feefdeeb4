"""qc.start() on the main thread handles signals as the wheel's does, and gives them back when it stops.

Signals are about the process, not the database: SQLite only.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import quebec
from conftest import eventually

HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


@pytest.fixture(autouse=True)
def python_default_handlers() -> Iterator[None]:
    """Each test starts from Python's own handlers, whatever runtimes earlier tests left behind."""
    saved = handlers()
    for signum in HANDLED:
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)  # type: ignore[arg-type]


@pytest.fixture
def qc(tmp_path: Path) -> Iterator[quebec.Quebec]:
    made = quebec.Quebec(f"sqlite:///{tmp_path}/s.db?mode=rwc", table_name_prefix="t_signals")
    yield made
    made.close()


def handlers() -> dict[int, object]:
    return {signum: signal.getsignal(signum) for signum in HANDLED}


def test_start_routes_signals_to_the_runtime_and_stop_gives_them_back(qc: quebec.Quebec) -> None:
    before = handlers()
    qc.start(spawn=["worker"])
    assert all(handlers()[s] is not before[s] for s in HANDLED)
    qc.stop()
    assert handlers() == before


def test_term_stops_a_started_runtime_gracefully(qc: quebec.Quebec) -> None:
    before = handlers()
    stopped = threading.Event()
    qc.on_stop(stopped.set)
    qc.start(spawn=["worker"])
    signal.raise_signal(signal.SIGTERM)
    assert stopped.wait(10)  # stop hooks ran: the graceful path, not the default (death)
    qc.wait(10)
    assert handlers() == before  # wait() on the main thread gave them back


def test_usr1_makes_a_started_runtime_quiet(qc: quebec.Quebec) -> None:
    qc.start(spawn=["worker"])
    signal.raise_signal(signal.SIGUSR1)
    eventually(lambda: qc.is_quiet)


def test_a_signal_after_a_stop_off_the_main_thread_gets_its_old_behaviour(qc: quebec.Quebec) -> None:
    before = handlers()
    qc.start(spawn=["worker"])
    stopper = threading.Thread(target=qc.stop)  # off the main thread: handlers cannot be restored there
    stopper.start()
    stopper.join(10)
    assert handlers() != before
    with pytest.raises(KeyboardInterrupt):  # Python's own SIGINT behaviour, not a dead runtime's
        signal.raise_signal(signal.SIGINT)
    assert handlers() == before


def test_start_off_the_main_thread_installs_no_handler(qc: quebec.Quebec) -> None:
    before = handlers()
    starter = threading.Thread(target=qc.start, kwargs={"spawn": ["worker"]})
    starter.start()
    starter.join(10)
    assert handlers() == before
    qc.stop()


def test_a_closed_runtimes_handler_put_back_by_a_later_one_still_reaches_the_original() -> None:
    # Runtime A installs, runtime B installs over it (B's "previous" is A's handler), A closes
    # and restores, then B closes and puts A's handler back. A signal now reaches A's closed
    # handler: it must hand the signal to the original handler, not re-raise it forever
    # (RecursionError, seen when the test suite ran many runtimes in one process).
    from quebec.engine.signals import Intents

    got: list[int] = []
    original = signal.signal(signal.SIGUSR2, lambda signum, _frame: got.append(signum))
    try:
        a, b = Intents(), Intents()
        assert a.install() and b.install()
        a.close()
        b.close()
        signal.raise_signal(signal.SIGUSR2)
        assert got == [signal.SIGUSR2]
    finally:
        signal.signal(signal.SIGUSR2, original)
