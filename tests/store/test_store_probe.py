"""ReadyProbe: an idle worker's "is anything ready?", on a connection of its own."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from store_support import (
    db_fixture,  # noqa: F401 - a fixture
    enqueue,
    new_job,
    tables_fixture,  # noqa: F401 - a fixture
)

from quebec.dialects.sqlite import WalSignal
from quebec.store import Database, pauses
from quebec.store.probe import ReadyProbe
from quebec.types import QueueSelector


def probe(db: Database, queues: str | list[str]) -> Iterator[ReadyProbe]:
    made = ReadyProbe(db, QueueSelector.parse(queues))
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def everything(db: Database) -> Iterator[ReadyProbe]:
    yield from probe(db, "*")


def test_the_probe_sees_a_ready_job_committed_after_its_previous_answer(db: Database, everything: ReadyProbe) -> None:
    assert not everything.any_ready()
    enqueue(db, new_job(db))
    assert everything.any_ready()  # autocommit: no snapshot kept from the first answer


def test_the_probe_leaves_paused_queues_and_other_queues_out(db: Database) -> None:
    enqueue(db, new_job(db, queue="mail"), new_job(db, queue="other"))
    db.transact(pauses.pause, queue_name="mail")
    for queues, expected in ((["mail"], False), (["other"], True), (["billing"], False)):
        for made in probe(db, queues):
            assert made.any_ready() is expected, queues


def test_a_prefix_pattern_takes_underscore_and_percent_literally(db: Database) -> None:
    enqueue(db, new_job(db, queue="mailXbulk"))
    for made in probe(db, ["mail_*"]):
        assert not made.any_ready(), "mail_* must not match mailXbulk"
    enqueue(db, new_job(db, queue="mail_bulk"))
    for made in probe(db, ["mail_*"]):
        assert made.any_ready()


def test_a_probe_that_cannot_ask_says_yes_so_the_worker_claims_and_reports(db: Database) -> None:
    missing = Database(db.url, prefix="t_no_such_tables")
    for made in probe(missing, "*"):
        assert made.any_ready()
    missing.dispose()


def test_the_wal_signal_calls_back_when_another_connection_commits(tmp_path: Path) -> None:
    if not WalSignal.available():
        pytest.skip("inotify_simple is not installed (Linux only)")
    db = Database(f"sqlite:///{tmp_path}/signal.db?mode=rwc", prefix="t_signal")
    db.connect()
    db.create_tables()
    called = threading.Event()
    signal = db.dialect.commit_signal()
    assert signal is not None
    assert signal.start(called.set)
    try:
        enqueue(db, new_job(db))
        assert called.wait(10), "no call back within 10 s of a commit"
    finally:
        signal.close()
        db.dispose()
