"""Operating queues and failed jobs on every backend: pause_all/resume_all/queue_paused, the
since/until/error_like filters of retry_all_failed/discard_all_failed, count_clearable_jobs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from api_support import count_rows, fail_ready_jobs, failed_ids, state

import quebec
from quebec import ops
from quebec.clock import FrozenClock
from quebec.errors import InvalidIdentifier
from quebec.store import processes, ready
from quebec.types import ErrorInfo, JobState, ProcessInfo, QueueSelector

T0 = datetime(2030, 1, 1, 12, 0, 0)


def epoch(at: datetime) -> float:
    return at.replace(tzinfo=UTC).timestamp()


class Flaky(quebec.BaseClass):
    def perform(self, *args: Any) -> None:
        pass


class Other(quebec.BaseClass):
    def perform(self, *args: Any) -> None:
        pass


def test_pause_all_pauses_every_queue_that_has_a_job_and_resume_all_undoes_it(qc: Any) -> None:
    Flaky.set(queue="ready-q").perform_later(qc)
    Flaky.set(queue="later-q", wait=3600).perform_later(qc)
    finished = Flaky.set(queue="done-q").perform_later(qc)
    assert qc.cancel(finished.id)
    assert qc.pause_queue("manual-q") is True
    assert qc.pause_all() == 3  # queues of ready, scheduled and finished jobs; manual-q was paused already
    assert qc.paused_queues() == ["done-q", "later-q", "manual-q", "ready-q"]
    assert qc.pause_all() == 0
    assert qc.queue_paused("ready-q") is True and qc.queue_paused("no-jobs-q") is False
    pid = qc.db.transact(processes.register, info=ProcessInfo(kind="Worker", name="w", pid=1, hostname="h"))
    assert qc.db.transact(ready.claim, queues=QueueSelector(("*",)), limit=10, process_id=pid) == []
    assert qc.resume_all() == 4
    assert qc.paused_queues() == [] and qc.queue_paused("ready-q") is False and qc.resume_all() == 0
    assert len(qc.db.transact(ready.claim, queues=QueueSelector(("*",)), limit=10, process_id=pid)) == 1
    with pytest.raises(InvalidIdentifier, match="queue name 'bad name' is not valid"):
        qc.queue_paused("bad name")


@pytest.fixture
def three_failures(qc: Any) -> dict[str, int]:
    """alpha fails at T0, beta at T0+60 s, gamma (another class) at T0+120 s."""
    clock = FrozenClock(T0)
    qc.db.clock = clock
    ids: dict[str, int] = {}
    for name, cls, error in (
        ("alpha", Flaky, ErrorInfo("TimeoutError", "alpha 50% off")),
        ("beta", Flaky, ErrorInfo("RuntimeError", "beta_x")),
        ("gamma", Other, ErrorInfo("KeyError", "gamma")),
    ):
        cls.perform_later(qc, name)
        (ids[name],) = fail_ready_jobs(qc, error)
        clock.advance(60)
    return ids


def _matching(qc: Any, ids: dict[str, int], **where: Any) -> set[str]:
    found = {r.id for r in ops.failed_jobs(qc.db, **where)}
    return {name for name, job_id in ids.items() if job_id in found}


def test_failed_job_filters_match_the_wheels_semantics(qc: Any, backend: str, three_failures: dict[str, int]) -> None:
    ids, later = three_failures, T0 + timedelta(seconds=30)
    assert _matching(qc, ids, since=epoch(later)) == {"beta", "gamma"}
    assert _matching(qc, ids, since=later) == {"beta", "gamma"}  # a naive datetime is UTC
    assert _matching(qc, ids, since=later.replace(tzinfo=UTC).astimezone(timezone(timedelta(hours=5)))) == {
        "beta",
        "gamma",
    }
    assert _matching(qc, ids, until=epoch(T0 + timedelta(seconds=60))) == {"alpha", "beta"}  # bounds are inclusive
    assert _matching(qc, ids, since=int(epoch(T0)) + 60, until=T0 + timedelta(seconds=60)) == {"beta"}
    assert _matching(qc, ids, error_like="%alpha%") == {"alpha"}
    assert _matching(qc, ids, error_like="%beta_x%") == {"beta"} and _matching(qc, ids, error_like="%beta%x%") == {
        "beta"
    }
    assert _matching(qc, ids, error_like="%TimeoutError%") == {"alpha"}  # the whole stored error JSON is matched
    assert _matching(qc, ids, error_like="alpha") == set()  # a LIKE pattern, not a substring
    assert _matching(qc, ids, error_like="%gamma%", class_name=Other.__qualname__) == {"gamma"}
    assert _matching(qc, ids, error_like="%gamma%", class_name=Flaky.__qualname__) == set()
    # Case follows the database, as in the wheel: PostgreSQL's LIKE is case-sensitive.
    assert _matching(qc, ids, error_like="%ALPHA%") == (set() if backend == "postgresql" else {"alpha"})


def test_retry_and_discard_all_failed_take_only_what_the_filters_match(qc: Any, three_failures: dict[str, int]) -> None:
    ids = three_failures
    assert qc.discard_all_failed(error_like="%gamma%") == 1
    assert qc.retry_all_failed(until=epoch(T0 + timedelta(seconds=30))) == 1
    assert state(qc, ids["gamma"]) == JobState.FINISHED and state(qc, ids["alpha"]) == JobState.READY
    assert failed_ids(qc) == {ids["beta"]}
    assert qc.retry_all_failed(since=T0 + timedelta(hours=1)) == 0 and qc.discard_all_failed(queue_name="none") == 0
    assert qc.retry_all_failed(class_name=Flaky.__qualname__, error_like="%beta%", since=T0) == 1
    assert failed_ids(qc) == set()


BAD_FILTERS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"error_like": 5}, TypeError, "error_like must be an SQL LIKE pattern"),
    ({"since": "yesterday"}, TypeError, "since must be seconds since the epoch or a datetime"),
    ({"until": True}, TypeError, "until must be seconds since the epoch"),
    ({"since": 1e20}, ValueError, r"since=1e\+20 is out of range"),
]


def test_bad_failed_job_filters_are_refused_before_anything_changes(qc: Any, three_failures: dict[str, int]) -> None:
    for where, error, fragment in BAD_FILTERS:
        for action in (qc.retry_all_failed, qc.discard_all_failed):
            with pytest.raises(error, match=fragment):
                action(**where)
    assert failed_ids(qc) == set(three_failures.values())


def test_count_clearable_jobs_counts_what_clear_finished_jobs_deletes(make_qc: Any) -> None:
    qc = make_qc(clear_finished_jobs_after=60)
    clock = FrozenClock(T0)
    qc.db.clock = clock
    first, second = Flaky.perform_later(qc, 1), Flaky.perform_later(qc, 2)
    waiting = Flaky.set(wait=3600).perform_later(qc, 3)
    assert qc.cancel(first.id)  # finished at T0
    clock.advance(60)
    assert qc.cancel(second.id)  # finished at T0+60
    Other.perform_later(qc)
    fail_ready_jobs(qc, ErrorInfo("E", "failed jobs are not finished"))
    assert qc.count_clearable_jobs(epoch(T0 + timedelta(seconds=30))) == 1
    assert qc.count_clearable_jobs(finished_before=T0 + timedelta(seconds=61)) == 2
    assert qc.count_clearable_jobs(finished_before=T0) == 0  # strictly before, as clear_finished_jobs
    assert qc.count_clearable_jobs() == 0  # now (T0+60) minus clear_finished_jobs_after
    clock.advance(30)
    assert qc.count_clearable_jobs() == 1
    with pytest.raises(TypeError, match="finished_before must be seconds since the epoch"):
        qc.count_clearable_jobs("soon")
    assert qc.clear_finished_jobs() == 1 and qc.count_clearable_jobs() == 0
    assert count_rows(qc) == 3 and state(qc, waiting.id) == JobState.SCHEDULED
