"""Process rows: register, heartbeat_many, deregister, prune_dead."""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import timedelta

from sqlalchemy import insert, select
from store_support import (
    claimed_ids,
    clock_of,
    count_rows,
    db_fixture,  # noqa: F401 - a fixture
    enqueue,
    job_row,
    new_job,
    register,
    state_of,
    tables_fixture,  # noqa: F401 - a fixture
)

from quebec.store import Database, processes, queries
from quebec.types import ErrorInfo, JobState, ProcessInfo, Pruned

THRESHOLD = timedelta(seconds=60)


def prune(db: Database, *, dead_ids: Collection[int] = (), at_most_once: Collection[str] = ()) -> Pruned:
    return db.transact(
        processes.prune_dead, stale_before=db.clock.now() - THRESHOLD, dead_ids=dead_ids, at_most_once=at_most_once
    )


def test_heartbeat_many_refreshes_live_rows_and_reports_missing_ids(db: Database) -> None:
    a, b = register(db), register(db)
    db.transact(processes.deregister, process_id=b)
    clock_of(db).advance(30)
    assert db.transact(processes.heartbeat_many, process_ids=[a, b, 10**12]) == [b, 10**12]
    rows = {r["id"]: r for r in db.read(queries.processes)}
    assert list(rows) == [a]
    assert rows[a]["last_heartbeat_at"] == db.clock.now()
    assert db.transact(processes.heartbeat_many, process_ids=[]) == []


def test_heartbeat_keeps_a_process_from_being_pruned(db: Database) -> None:
    a, b = register(db), register(db)
    clock_of(db).advance(50)
    db.transact(processes.heartbeat_many, process_ids=[a])
    clock_of(db).advance(50)
    pruned = prune(db)
    assert pruned.process_ids == (b,)
    assert [r["id"] for r in db.read(queries.processes)] == [a]


def test_prune_dead_puts_claims_of_stale_processes_back_to_ready(db: Database) -> None:
    ids = enqueue(db, *(new_job(db) for _ in range(3)))
    dead = register(db)
    assert claimed_ids(db, dead) == ids
    clock_of(db).advance(61)
    pruned = prune(db)
    assert pruned.process_ids == (dead,)
    assert sorted(pruned.released) == ids
    assert pruned.failed == ()
    assert [state_of(db, j) for j in ids] == [JobState.READY] * 3
    assert claimed_ids(db, register(db)) == ids


def test_prune_dead_leaves_live_processes_and_their_claims_alone(db: Database) -> None:
    (job_id,) = enqueue(db, new_job(db))
    alive = register(db)
    claimed_ids(db, alive)
    clock_of(db).advance(59)
    pruned = prune(db)
    assert (pruned.process_ids, pruned.released, pruned.failed) == ((), (), ())
    assert job_row(db, job_id).process_id == alive
    assert count_rows(db, "processes") == 1


def test_prune_dead_fails_at_most_once_classes_with_process_pruned_error(db: Database) -> None:
    once, again = enqueue(db, new_job(db, class_name="ChargeCard"), new_job(db, class_name="SendMail"))
    dead = register(db)
    claimed_ids(db, dead)
    clock_of(db).advance(61)
    pruned = prune(db, at_most_once=["ChargeCard"])
    assert (pruned.failed, pruned.released) == ((once,), (again,))
    row = job_row(db, once)
    assert row.state == JobState.FAILED
    assert row.finished_at is None
    assert row.error is not None
    assert row.error["exception_class"] == "ProcessPrunedError"
    assert row.error["message"]
    assert state_of(db, again) == JobState.READY


def test_prune_dead_fails_the_jobs_named_failing_with_their_error_and_releases_the_rest(db: Database) -> None:
    running, waiting, once = enqueue(db, new_job(db), new_job(db), new_job(db, class_name="ChargeCard"))
    dead = register(db)
    claimed_ids(db, dead)
    oom = ErrorInfo("ProcessOOMKilledError", "worker-0 (pid 7) was killed by the kernel OOM killer at memory.max=256M")
    pruned = db.transact(
        processes.prune_dead,
        stale_before=db.clock.now() - THRESHOLD,
        dead_ids=[dead],
        failing=[running],
        failing_error=oom,
    )
    assert (pruned.failed, sorted(pruned.released)) == ((running,), sorted([waiting, once]))
    row = job_row(db, running)
    assert row.state == JobState.FAILED
    assert row.error is not None
    assert (row.error["exception_class"], row.error["message"]) == (oom.exception_class, oom.message)
    assert state_of(db, waiting) == state_of(db, once) == JobState.READY


def test_prune_dead_recovers_orphan_claims_whose_process_row_is_gone(db: Database) -> None:
    orphan, once = enqueue(db, new_job(db), new_job(db, class_name="ChargeCard"))
    gone = register(db)
    claimed_ids(db, gone)
    db.transact(processes.deregister, process_id=gone)
    pruned = prune(db, at_most_once=["ChargeCard"])
    assert pruned.process_ids == ()
    assert (pruned.released, pruned.failed) == ((orphan,), (once,))
    assert state_of(db, orphan) == JobState.READY
    assert state_of(db, once) == JobState.FAILED


def test_prune_dead_recovers_claims_without_a_process_id(db: Database) -> None:
    (job_id,) = enqueue(db, new_job(db))
    c = db.tables.claimed_executions
    db.transact(lambda tx: tx.conn.execute(insert(c).values(job_id=job_id, process_id=None, created_at=tx.now)))
    db.transact(
        lambda tx: tx.conn.execute(
            db.tables.ready_executions.delete().where(db.tables.ready_executions.c.job_id == job_id)
        )
    )
    assert state_of(db, job_id) == JobState.CLAIMED
    assert prune(db).released == (job_id,)
    assert state_of(db, job_id) == JobState.READY


def test_prune_dead_removes_processes_named_dead_even_with_a_fresh_heartbeat(db: Database) -> None:
    (job_id,) = enqueue(db, new_job(db))
    vanished, alive = register(db), register(db)
    claimed_ids(db, vanished)
    pruned = prune(db, dead_ids=[vanished])
    assert (pruned.process_ids, pruned.released) == ((vanished,), (job_id,))
    assert [r["id"] for r in db.read(queries.processes)] == [alive]


def test_register_stores_what_the_process_says_about_itself(db: Database) -> None:
    meta = json.dumps({"queues": ["*"], "threads": 3})
    pid = db.transact(
        processes.register, info=ProcessInfo(kind="Worker", name="worker-x", pid=4242, hostname="h1", metadata=meta)
    )
    p = db.tables.processes
    row = db.read(lambda tx: tx.conn.execute(select(p).where(p.c.id == pid)).one())
    assert (row.kind, row.name, row.pid, row.hostname, row.metadata, row.last_heartbeat_at) == (
        "Worker",
        "worker-x",
        4242,
        "h1",
        meta,
        db.clock.now(),
    )
    assert db.read(processes.on_host, hostname="h1") == [{"id": pid, "pid": 4242, "metadata": json.loads(meta)}]
    assert db.read(processes.on_host, hostname="elsewhere") == []
