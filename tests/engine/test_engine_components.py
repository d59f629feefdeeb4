"""Engine components stepped through run_once() on a FrozenClock, no threads started."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta

import pytest

from quebec.clock import FrozenClock
from quebec.engine.dispatcher import Dispatcher
from quebec.engine.maintenance import Maintenance
from quebec.store import Database, jobs, processes, queries, ready
from quebec.types import JobState, NewJob, ProcessInfo, QueueSelector

GONE_PID = 99_999_999  # above any pid_max: no such process


@pytest.fixture
def db(db_url: str, prefix: str) -> Iterator[Database]:
    database = Database(db_url, prefix=prefix, clock=FrozenClock())
    database.create_tables()
    yield database
    database.dispose()


@pytest.fixture
def clock(db: Database) -> FrozenClock:
    assert isinstance(db.clock, FrozenClock)
    return db.clock


def enqueue(db: Database, *seconds: float) -> list[int]:
    now = db.clock.now()
    batch = [
        NewJob(
            queue_name="default",
            class_name="Job",
            arguments=None,
            priority=0,
            active_job_id=f"job{i:09d}",
            scheduled_at=now + timedelta(seconds=s),
        )
        for i, s in enumerate(seconds)
    ]
    return [e.id for e in db.transact(jobs.enqueue_many, batch)]


def register(db: Database, *, hostname: str, pid: int) -> int:
    return db.transact(
        processes.register, info=ProcessInfo(kind="Worker", name=f"w-{hostname}-{pid}", pid=pid, hostname=hostname)
    )


def state(db: Database, job_id: int) -> JobState | None:
    row = db.read(queries.get_job, job_id=job_id)
    return None if row is None else row.state


def test_dispatcher_run_once_moves_due_jobs_and_runs_again_at_once_after_a_full_batch(
    db: Database, clock: FrozenClock
) -> None:
    ids = enqueue(db, 10, 10, 10, 3600)
    woken: list[None] = []
    dispatcher = Dispatcher(db, polling_interval=0.5, batch_size=2, on_dispatched=lambda: woken.append(None))
    assert dispatcher.run_once() == 0.5
    assert woken == []
    clock.advance(10)
    assert dispatcher.run_once() == 0.0
    assert dispatcher.run_once() == 0.5
    assert len(woken) == 2
    assert [state(db, j) for j in ids] == [JobState.READY] * 3 + [JobState.SCHEDULED]


def test_maintenance_prunes_stale_processes_and_puts_their_claims_back(db: Database, clock: FrozenClock) -> None:
    (job_id,) = enqueue(db, 0)
    mine = register(db, hostname="here", pid=os.getpid())
    elsewhere = register(db, hostname="elsewhere", pid=1)
    db.transact(ready.claim, queues=QueueSelector(), limit=1, process_id=elsewhere)
    pruned_alive: list[list[int]] = []
    maintenance = Maintenance(
        db,
        hostname="here",
        heartbeat_interval=5,
        alive_threshold=30,
        process_ids=lambda: [mine],
        on_pruned=pruned_alive.append,
        at_most_once=list,
    )
    clock.advance(31)
    maintenance.run_once()
    assert [p["id"] for p in db.read(queries.processes)] == [mine]
    assert state(db, job_id) == JobState.READY
    assert pruned_alive == []


def test_maintenance_prunes_processes_on_this_host_whose_pid_is_gone(db: Database) -> None:
    (job_id,) = enqueue(db, 0)
    mine = register(db, hostname="here", pid=os.getpid())
    crashed = register(db, hostname="here", pid=GONE_PID)
    db.transact(ready.claim, queues=QueueSelector(), limit=1, process_id=crashed)
    maintenance = Maintenance(
        db,
        hostname="here",
        heartbeat_interval=5,
        alive_threshold=30,
        process_ids=lambda: [mine],
        on_pruned=lambda ids: None,
        at_most_once=lambda: ["Job"],
    )
    maintenance.run_once()  # the heartbeat is fresh, but the pid is gone
    assert [p["id"] for p in db.read(queries.processes)] == [mine]
    row = db.read(queries.get_job, job_id=job_id)
    assert row is not None and row.state == JobState.FAILED
    assert row.error is not None and row.error["exception_class"] == "ProcessPrunedError"


def test_maintenance_heartbeat_registers_again_when_its_row_was_pruned(db: Database) -> None:
    mine = register(db, hostname="here", pid=os.getpid())
    db.transact(processes.deregister, process_id=mine)
    pruned_alive: list[list[int]] = []
    maintenance = Maintenance(
        db,
        hostname="here",
        heartbeat_interval=5,
        alive_threshold=30,
        process_ids=lambda: [mine],
        on_pruned=pruned_alive.append,
        at_most_once=list,
    )
    maintenance.heartbeat()
    assert pruned_alive == [[mine]]
