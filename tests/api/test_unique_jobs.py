"""Unique jobs: a duplicate returns the job it duplicates; a unique index is the referee."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest

import quebec
from quebec.clock import FrozenClock


class SyncAccountJob(quebec.BaseClass):
    unique_for = True  # while the job is not finished

    def perform(self, account_id: int) -> None:
        pass


class DigestJob(quebec.BaseClass):
    unique_for = timedelta(minutes=10)

    def unique_key(self, user_id: int, **kwargs: Any) -> str:
        return str(user_id)  # one digest per user, whatever else is passed

    def perform(self, user_id: int, note: str = "") -> None:
        pass


def _rows(qc: Any, class_name: str) -> int:
    jobs = qc.db.tables.jobs
    return len(qc.db.read(lambda tx: tx.conn.execute(jobs.select().where(jobs.c.class_name == class_name)).all()))


def test_a_duplicate_returns_the_job_it_duplicates_until_that_one_finishes(qc: Any) -> None:
    qc.register_job(SyncAccountJob)
    first = SyncAccountJob.perform_later(1)
    again = SyncAccountJob.perform_later(1)
    other = SyncAccountJob.perform_later(2)
    assert (again.id, again.active_job_id, again.state) == (first.id, first.active_job_id, "ready")
    assert other.id != first.id and _rows(qc, "SyncAccountJob") == 2
    assert qc.cancel(first.id)  # finished: the key is free again
    after = SyncAccountJob.perform_later(1)
    assert after.id != first.id and after.state == "ready"


def test_a_unique_period_holds_whatever_the_state_then_lapses(qc: Any) -> None:
    qc.register_job(DigestJob)
    qc.db.clock = clock = FrozenClock()
    first = DigestJob.perform_later(7, note="a")
    assert DigestJob.perform_later(7, note="b").id == first.id
    qc.cancel(first.id)
    assert DigestJob.perform_later(7).id == first.id  # still within ten minutes
    clock.advance(601)
    assert DigestJob.perform_later(7).id != first.id


def test_bulk_enqueue_inserts_one_job_per_unique_key(qc: Any) -> None:
    qc.register_job(SyncAccountJob)
    jobs = qc.perform_all_later([SyncAccountJob.build(n % 3) for n in range(9)])
    assert len({j.id for j in jobs}) == 3 and _rows(qc, "SyncAccountJob") == 3
    assert [j.id for j in jobs[:3]] == [j.id for j in jobs[3:6]] == [j.id for j in jobs[6:]]


def test_eight_threads_enqueueing_the_same_unique_job_at_once_insert_one_row(qc: Any) -> None:
    qc.register_job(SyncAccountJob)
    start = threading.Barrier(8)
    ids: list[int] = []
    errors: list[BaseException] = []

    def enqueue() -> None:
        start.wait()
        try:
            ids.append(SyncAccountJob.perform_later(42).id)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=enqueue) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert len(ids) == 8 and len(set(ids)) == 1
    assert _rows(qc, "SyncAccountJob") == 1


@pytest.mark.parametrize(
    ("attrs", "words"),
    [({"unique_for": 0}, "unique_for"), ({"unique_for": True, "unique_key": "k"}, "unique_key must be a method")],
)
def test_bad_unique_options_fail_at_class_definition(attrs: dict[str, Any], words: str) -> None:
    with pytest.raises(quebec.ConfigError, match=words):
        type("BadUnique", (quebec.BaseClass,), {**attrs, "perform": lambda self: None})
