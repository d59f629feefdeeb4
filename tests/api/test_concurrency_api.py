"""Concurrency limits through the public API: the seed's ReportJob, bad options, qc.unblock & co."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest

import quebec
from conftest import eventually


class ReportJob(quebec.BaseClass):
    """The seed's example, as written there."""

    concurrency_limit = 3  # max 3 concurrent executions per key
    concurrency_duration = 120  # semaphore TTL in seconds

    def concurrency_key(self, account_id: int, **kwargs: Any) -> str:
        return str(account_id)  # final key: "ReportJob/123"

    running: list[int] = []
    most = 0
    lock = threading.Lock()

    def perform(self, account_id: int) -> None:
        with ReportJob.lock:
            ReportJob.running.append(self.id)
            ReportJob.most = max(ReportJob.most, len(ReportJob.running))
        time.sleep(0.1)
        with ReportJob.lock:
            ReportJob.running.remove(self.id)


class OneAtATime(quebec.BaseClass):
    concurrency = quebec.ConcurrencyStrategy(key="all", to=1, duration=timedelta(seconds=30))

    def perform(self) -> None:
        pass


def _semaphores(qc: Any) -> dict[str, int]:
    from quebec.store import semaphores

    return qc.db.read(semaphores.free_slots, keys=["ReportJob/123", "ReportJob/9", "OneAtATime/all"])


def test_the_seeds_report_job_runs_at_most_three_at_once_and_every_job_runs(qc: Any) -> None:
    qc.register_job(ReportJob)
    ReportJob.most = 0
    jobs = [ReportJob.perform_later(123) for _ in range(6)] + [ReportJob.perform_later(9)]
    assert [j.state for j in jobs] == ["ready"] * 3 + ["blocked"] * 3 + ["ready"]
    assert _semaphores(qc) == {"ReportJob/123": 0, "ReportJob/9": 2}
    qc.start(threads=8)
    try:
        eventually(lambda: all(qc.get_job(j.id).state == "finished" for j in jobs), within=20)
    finally:
        qc.stop()
    assert ReportJob.most <= 4  # 3 of key 123 and 1 of key 9
    assert _semaphores(qc) == {"ReportJob/123": 3, "ReportJob/9": 3}


def test_concurrency_strategy_sets_limit_key_and_duration(qc: Any) -> None:
    qc.register_job(OneAtATime)
    first, second = OneAtATime.perform_later(), OneAtATime.perform_later()
    assert (first.state, second.state) == ("ready", "blocked")
    assert _semaphores(qc) == {"OneAtATime/all": 0}


def test_unblock_unblock_all_and_cancel_blocked(qc: Any) -> None:
    qc.register_job(ReportJob)
    jobs = [ReportJob.perform_later(5) for _ in range(7)]
    blocked = [j.id for j in jobs[3:]]
    assert qc.unblock(blocked[0]) is True
    assert qc.unblock(blocked[0]) is False  # ready now
    assert qc.get_job(blocked[0]).state == "ready"
    assert qc.cancel_blocked(blocked[1]) is True
    assert qc.get_job(blocked[1]) is None
    assert qc.unblock_all(class_name="OtherJob") == 0
    assert qc.unblock_all(class_name="ReportJob", queue_name="default") == 2
    assert {qc.get_job(j).state for j in blocked[2:]} == {"ready"}


@pytest.mark.parametrize(
    ("attrs", "error", "words"),
    [
        ({"concurrency_limit": 0}, quebec.ConfigError, "BadJob.concurrency_limit must be a whole number ≥ 1, got 0"),
        ({"concurrency_limit": True}, quebec.ConfigError, "got True"),
        ({"concurrency_limit": 2, "concurrency_duration": 0.5}, ValueError, "at least 1 second"),
        ({"concurrency_limit": 2, "concurrency_key": "x"}, quebec.ConfigError, "must be a method"),
        ({"concurrency_limit": 2, "concurrency_on_conflict": "discard"}, quebec.ConfigError, "ConcurrencyConflict"),
        ({"rate_limit_max": 0, "rate_limit_duration": timedelta(seconds=2)}, quebec.ConfigError, "rate_limit_max"),
        (
            {"rate_limit_max": 5, "rate_limit_duration": timedelta(milliseconds=500)},
            ValueError,
            r"BadJob.rate_limit_duration must be a datetime.timedelta of at least one second",
        ),
        ({"rate_limit_max": 5, "rate_limit_duration": 2}, ValueError, "got 2"),
        ({"exclusive": "yes"}, quebec.ConfigError, "BadJob.exclusive must be True or False"),
    ],
)
def test_bad_concurrency_options_fail_at_class_definition(
    attrs: dict[str, Any], error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        type("BadJob", (quebec.BaseClass,), {**attrs, "perform": lambda self: None})


@pytest.mark.parametrize(
    ("key", "words"),
    [
        (lambda self, n: n, "BadKeyJob.concurrency_key must return a str, got 1"),
        (lambda self: "x", "BadKeyJob.concurrency_key raised TypeError"),
    ],
)
def test_a_bad_concurrency_key_fails_the_enqueue_and_inserts_nothing(qc: Any, key: Any, words: str) -> None:
    attrs = {"concurrency_limit": 1, "concurrency_key": key, "perform": lambda s, n: 0}
    cls = qc.register_job(type("BadKeyJob", (quebec.BaseClass,), attrs))
    with pytest.raises(quebec.EnqueueError, match=words):
        qc.perform_all_later([cls.build(1), cls.build(5)])
    assert qc.db.read(lambda tx: tx.conn.execute(tx.tables.jobs.select()).all()) == []
