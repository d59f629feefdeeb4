"""The runtime through the public API: jobs enqueued with perform_later run with what they were given."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import quebec
from conftest import eventually
from quebec.store import queries
from quebec.types import JobState


def state(qc: quebec.Quebec, job_id: int | None) -> str | None:
    assert job_id is not None
    row = qc.get_job(job_id)
    return None if row is None else str(row.state)


def finished(qc: quebec.Quebec, *job_ids: int | None) -> Callable[[], bool]:
    return lambda: all(state(qc, j) == "finished" for j in job_ids)


def test_immediate_job_runs_with_args_and_kwargs_intact(qc: quebec.Quebec) -> None:
    seen: list[tuple[Any, ...]] = []

    @qc.register_job
    class Echo(quebec.BaseClass):
        def perform(self, *args: Any, **kwargs: Any) -> None:
            seen.append((self.id, self.queue_name, args, kwargs))

    aware = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    naive = datetime(2031, 12, 31, 23, 59, 59, 1)
    ident = uuid4()
    args = (1, "two ünï 💡", 3.5, None, True, [1, [2, {"x": []}]], {"nested": {"deep": [Decimal("1.10"), ident]}})
    kwargs = {
        "when": aware,
        "naive": naive,
        "amount": Decimal("12.3400"),
        "ident": ident,
        "nested": {"a": {"b": [1, {"day": date(2020, 2, 29)}]}, "empty": {}},
    }
    job = Echo.perform_later(*args, **kwargs)
    assert job.id is not None
    qc.start(spawn=["worker"])
    eventually(finished(qc, job.id))
    ((job_id, queue_name, got_args, got_kwargs),) = seen
    assert (job_id, queue_name) == (job.id, "default")
    assert got_args == args
    assert got_kwargs == kwargs
    assert got_kwargs["when"].utcoffset() == timedelta(hours=5, minutes=30)
    assert got_kwargs["naive"].tzinfo is None
    assert str(got_kwargs["amount"]) == "12.3400"
    assert isinstance(got_kwargs["ident"], UUID)
    assert str(got_args[6]["nested"]["deep"][0]) == "1.10"


def test_set_wait_runs_the_job_only_after_the_delay(make_qc: Callable[..., quebec.Quebec]) -> None:
    qc = make_qc()
    ran: dict[str, float] = {}

    @qc.register_job
    class Later(quebec.BaseClass):
        def perform(self, key: str) -> None:
            ran[key] = time.time()

    qc.start(spawn=["worker", "dispatcher"])
    before = time.time()
    seconds = Later.set(wait=0.5).perform_later("seconds")
    delta = Later.set(wait=timedelta(milliseconds=600)).perform_later("timedelta")
    # Still waiting, unless a loaded machine took the whole delay to get here (CI saw that):
    # the ran-at checks below hold either way.
    seen, read_by = state(qc, delta.id), time.time()
    if read_by < before + 0.6:
        assert seen == "scheduled"
    eventually(finished(qc, seconds.id, delta.id))
    assert ran["seconds"] >= before + 0.5
    assert ran["timedelta"] >= before + 0.6


def test_set_wait_until_runs_the_job_only_after_the_given_time(make_qc: Callable[..., quebec.Quebec]) -> None:
    qc = make_qc()
    ran: dict[str, float] = {}

    @qc.register_job
    class AtTime(quebec.BaseClass):
        def perform(self, key: str) -> None:
            ran[key] = time.time()

    qc.start(spawn=["worker", "dispatcher"])
    aware_at = datetime.now(timezone(timedelta(hours=-7))) + timedelta(seconds=0.5)
    naive_at = datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=0.6)  # naive is taken as UTC
    past_at = datetime.now(UTC) - timedelta(hours=1)
    aware = AtTime.set(wait_until=aware_at).perform_later("aware")
    naive = AtTime.set(wait_until=naive_at).perform_later("naive")
    past = AtTime.set(wait_until=past_at).perform_later("past")
    assert (state(qc, aware.id), state(qc, naive.id)) == ("scheduled", "scheduled")
    assert past.state == "ready"
    eventually(finished(qc, aware.id, naive.id, past.id))
    assert ran["aware"] >= aware_at.timestamp()
    assert ran["naive"] >= naive_at.replace(tzinfo=UTC).timestamp()
    assert ran["past"] < ran["aware"]


def test_set_queue_and_priority_are_stored_and_seen_by_the_job(make_qc: Callable[..., quebec.Quebec]) -> None:
    qc = make_qc()
    seen: list[tuple[str, int]] = []

    @qc.register_job
    class Routed(quebec.BaseClass):
        queue_as = "low"
        priority = 20

        def perform(self) -> None:
            seen.append((self.queue_name, self.priority))

    job = Routed.set(queue="critical", priority=-5).perform_later()
    plain = Routed.perform_later()
    row = qc.get_job(job.id)  # type: ignore[arg-type]
    assert (row.queue_name, row.priority) == ("critical", -5)
    assert (job.queue_name, job.priority) == ("critical", -5)
    assert (plain.queue_name, plain.priority) == ("low", 20)
    qc.start(spawn=["worker"])
    eventually(finished(qc, job.id, plain.id))
    assert seen == [("critical", -5), ("low", 20)]


def test_perform_all_later_runs_every_job(qc: quebec.Quebec) -> None:
    seen: set[int] = set()
    lock = threading.Lock()

    @qc.register_job
    class Many(quebec.BaseClass):
        def perform(self, n: int) -> None:
            with lock:
                seen.add(n)

    jobs = qc.perform_all_later([Many.build(i) for i in range(500)])
    assert len({j.id for j in jobs}) == 500
    assert all(j.state == "ready" for j in jobs)
    qc.start(spawn=["worker"])
    eventually(lambda: qc.db.read(queries.state_counts)[JobState.FINISHED] == 500, within=30)
    assert seen == set(range(500))


def test_jobs_run_in_priority_order_with_one_thread(make_qc: Callable[..., quebec.Quebec]) -> None:
    qc = make_qc(worker_threads=1)
    order: list[int] = []

    @qc.register_job
    class Ranked(quebec.BaseClass):
        def perform(self, priority: int) -> None:
            order.append(priority)

    priorities = [5, 1, 3, 0, 2, -1, 1]
    jobs = [Ranked.set(priority=p).perform_later(p) for p in priorities]
    qc.start(spawn=["worker"])
    eventually(finished(qc, *(j.id for j in jobs)))
    assert order == sorted(priorities)


def test_preserve_finished_jobs_false_deletes_the_row_when_the_job_finishes(
    make_qc: Callable[..., quebec.Quebec],
) -> None:
    qc = make_qc(preserve_finished_jobs=False)
    ran: list[int] = []

    @qc.register_job
    class Ephemeral(quebec.BaseClass):
        def perform(self, n: int) -> None:
            ran.append(n)

    job = Ephemeral.perform_later(7)
    qc.start(spawn=["worker"])
    eventually(lambda: qc.get_job(job.id) is None)  # type: ignore[arg-type]
    assert ran == [7]
