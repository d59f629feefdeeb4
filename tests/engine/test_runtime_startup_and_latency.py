"""The runtime starts loudly and keeps free threads busy."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

import quebec
from conftest import FAST, eventually
from quebec.errors import MissingTables


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def state(qc: quebec.Quebec, job_id: int | None) -> str | None:
    assert job_id is not None
    row = qc.get_job(job_id)
    return None if row is None else str(row.state)


def test_start_raises_when_the_runtime_cannot_start(qc: quebec.Quebec) -> None:
    qc.db.transact(lambda tx: tx.conn.execute(text(f"DROP TABLE {tx.tables.processes.name}")))
    outcome: list[BaseException | None] = []

    def start() -> None:
        try:
            qc.start(spawn=["worker"])
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    threading.Thread(target=start, daemon=True).start()
    eventually(lambda: outcome, within=2)
    assert isinstance(outcome[0], MissingTables)


def test_a_free_thread_takes_new_jobs_while_the_others_run_long_jobs(
    make_qc: Callable[..., quebec.Quebec], gate: threading.Event
) -> None:
    qc = make_qc(worker_threads=4)
    started: list[str] = []

    @qc.register_job
    class Work(quebec.BaseClass):
        def perform(self, name: str, seconds: float = 0.0, hold: bool = False) -> None:
            started.append(name)
            time.sleep(seconds)  # simulated work, so the lane learns these jobs are slow
            if hold:
                gate.wait(30)

    warmup = Work.perform_later("warmup", 0.3)
    qc.start(spawn=["worker"])
    eventually(lambda: state(qc, warmup.id) == "finished")
    for n in range(3):
        Work.perform_later(f"long{n}", hold=True)
    eventually(lambda: len(started) == 4)
    quick = Work.perform_later("quick")
    eventually(lambda: state(qc, quick.id) == "finished", within=2)


class OneFile:
    """Two Quebecs on one SQLite file, as two processes would be: `other`'s enqueues cannot
    wake `qc`'s worker in memory. Both know Ping, which records the names it runs."""

    def __init__(self, tmp_path: Path, **options: object) -> None:
        url = f"sqlite:///{tmp_path}/watch.db?mode=rwc"
        self.qc, self.other = quebec.Quebec(url, **{**FAST, **options}), quebec.Quebec(url)
        self.ran: list[str] = []
        ran = self.ran

        class Ping(quebec.BaseClass):
            def perform(self, name: str) -> None:
                ran.append(name)

        self.ping = Ping
        self.qc.register_job(Ping)
        self.other.register_job_class(Ping)

    def close(self) -> None:
        self.qc.close()
        self.other.close()


@pytest.fixture
def one_file(tmp_path: Path) -> Iterator[Callable[..., OneFile]]:
    made: list[OneFile] = []

    def make(**options: object) -> OneFile:
        made.append(OneFile(tmp_path, **options))
        return made[-1]

    yield make
    for pair in made:
        pair.close()


def test_an_idle_sqlite_worker_sees_another_process_enqueue_long_before_its_polling_interval(
    one_file: Callable[..., OneFile],
) -> None:
    # SQLite only: PostgreSQL wakes workers with LISTEN/NOTIFY; MySQL has no change signal.
    pair = one_file(worker_polling_interval=30)
    warmup = pair.ping.perform_later(pair.qc, "warmup")
    pair.qc.start(spawn=["worker"])
    eventually(lambda: state(pair.qc, warmup.id) == "finished")
    time.sleep(0.2)  # the worker has looked, found nothing, and will not query again for 30 s
    job = pair.ping.perform_later(pair.other, "from elsewhere")
    eventually(lambda: state(pair.qc, job.id) == "finished", within=5)
    assert pair.ran == ["warmup", "from elsewhere"]


def test_a_failing_change_watcher_leaves_the_worker_polling(
    one_file: Callable[..., OneFile], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import sqlite3

    from quebec.dialects.sqlite import DataVersionWatcher

    def broken(self: DataVersionWatcher) -> bool:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(DataVersionWatcher, "changed", broken)
    pair = one_file()
    pair.qc.start(spawn=["worker"])
    eventually(lambda: "worker.watcher_failed" in caplog.text)
    job = pair.ping.perform_later(pair.other, "polled")
    eventually(lambda: state(pair.qc, job.id) == "finished", within=5)
    assert pair.ran == ["polled"]
