"""jobs.enqueue_many (∅ → ready | scheduled) and create_tables."""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from store_support import (
    claimed_ids,
    count_rows,
    db_fixture,  # noqa: F401 - a fixture
    enqueue,
    job_row,
    new_job,
    open_db,
    register,
    state_of,
    tables_fixture,  # noqa: F401 - a fixture
)

from conftest import backend_url, drop_prefix
from quebec.errors import MissingTables
from quebec.store import Database, Tx, claimed, jobs
from quebec.types import ErrorInfo, JobState


def test_enqueue_many_of_nothing_inserts_nothing(db: Database) -> None:
    assert db.transact(jobs.enqueue_many, []) == []
    assert count_rows(db, "jobs") == 0


def test_enqueue_many_puts_due_jobs_in_ready_and_future_jobs_in_scheduled(db: Database) -> None:
    batch = [new_job(db, in_seconds=-60), new_job(db, in_seconds=0), new_job(db, in_seconds=60)]
    enqueued = db.transact(jobs.enqueue_many, batch)
    assert [e.state for e in enqueued] == [JobState.READY, JobState.READY, JobState.SCHEDULED]
    assert [state_of(db, e.id) for e in enqueued] == [JobState.READY, JobState.READY, JobState.SCHEDULED]
    assert count_rows(db, "ready_executions") == 2
    assert count_rows(db, "scheduled_executions") == 1


def test_enqueue_many_returns_ids_in_input_order(db: Database) -> None:
    batch = [
        new_job(db, queue=q, priority=p, in_seconds=s, class_name=f"Job{i}")
        for i, (q, p, s) in enumerate([("b", 5, 0), ("a", 1, 30), ("c", 9, 0), ("a", 0, 90), ("b", 3, 0)])
    ]
    enqueued = db.transact(jobs.enqueue_many, batch)
    assert [e.active_job_id for e in enqueued] == [j.active_job_id for j in batch]
    assert len({e.id for e in enqueued}) == len(batch)
    for e, j in zip(enqueued, batch, strict=True):
        row = job_row(db, e.id)
        assert (row.class_name, row.queue_name, row.priority, row.active_job_id, row.arguments) == (
            j.class_name,
            j.queue_name,
            j.priority,
            j.active_job_id,
            j.arguments,
        )


def test_enqueue_many_copies_queue_priority_and_time_to_execution_rows(db: Database) -> None:
    due, later = new_job(db, queue="mail", priority=-3), new_job(db, queue="cron", priority=7, in_seconds=600)
    ready_id, scheduled_id = enqueue(db, due, later)
    t = db.tables

    def rows(tx: Tx) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
        r = tx.conn.execute(
            select(t.ready_executions.c.job_id, t.ready_executions.c.queue_name, t.ready_executions.c.priority)
        ).all()
        s = tx.conn.execute(
            select(
                t.scheduled_executions.c.job_id,
                t.scheduled_executions.c.queue_name,
                t.scheduled_executions.c.priority,
                t.scheduled_executions.c.scheduled_at,
            )
        ).all()
        return [tuple(x) for x in r], [tuple(x) for x in s]

    ready_rows, scheduled_rows = db.read(rows)
    assert ready_rows == [(ready_id, "mail", -3)]
    assert scheduled_rows == [(scheduled_id, "cron", 7, later.scheduled_at)]
    assert job_row(db, scheduled_id).scheduled_at == later.scheduled_at
    assert job_row(db, ready_id).finished_at is None


def test_enqueue_many_inserts_five_thousand_jobs_in_one_call(db: Database) -> None:
    batch = [new_job(db, priority=i % 7, in_seconds=0 if i % 5 else 3600) for i in range(5000)]
    enqueued = db.transact(jobs.enqueue_many, batch)
    assert len(enqueued) == 5000
    assert [e.active_job_id for e in enqueued] == [j.active_job_id for j in batch]
    assert len({e.id for e in enqueued}) == 5000
    assert count_rows(db, "jobs") == 5000
    assert count_rows(db, "ready_executions") == 4000
    assert count_rows(db, "scheduled_executions") == 1000
    t = db.tables
    by_id = dict(db.read(lambda tx: tx.conn.execute(select(t.jobs.c.id, t.jobs.c.active_job_id)).all()))
    assert [by_id[e.id] for e in enqueued] == [j.active_job_id for j in batch]


@pytest.mark.parametrize("size", [5, jobs.BULK + 7], ids=["small", "bulk"])
def test_every_execution_row_carries_the_queue_priority_and_time_of_its_job(db: Database, size: int) -> None:
    # A bulk batch takes another path (COPY on PostgreSQL, INSERT … SELECT on SQLite).
    batch = [new_job(db, queue=f"q{i % 3}", priority=i % 5 - 2, in_seconds=0 if i % 2 else 60 + i) for i in range(size)]
    enqueued = db.transact(jobs.enqueue_many, batch)
    t, now = db.tables, db.clock.now()
    ready = {
        r.job_id: (r.queue_name, r.priority)
        for r in db.read(
            lambda tx: tx.conn.execute(
                select(t.ready_executions.c.job_id, t.ready_executions.c.queue_name, t.ready_executions.c.priority)
            ).all()
        )
    }
    scheduled = {
        r.job_id: (r.queue_name, r.priority, r.scheduled_at)
        for r in db.read(
            lambda tx: tx.conn.execute(
                select(
                    t.scheduled_executions.c.job_id,
                    t.scheduled_executions.c.queue_name,
                    t.scheduled_executions.c.priority,
                    t.scheduled_executions.c.scheduled_at,
                )
            ).all()
        )
    }
    assert len(ready) + len(scheduled) == size
    for e, j in zip(enqueued, batch, strict=True):
        if j.scheduled_at > now:
            assert e.state == JobState.SCHEDULED
            assert scheduled[e.id] == (j.queue_name, j.priority, j.scheduled_at)
        else:
            assert e.state == JobState.READY
            assert ready[e.id] == (j.queue_name, j.priority)
        assert job_row(db, e.id).active_job_id == j.active_job_id


@pytest.mark.parametrize("size", [5, jobs.BULK + 7], ids=["small", "bulk"])
def test_an_enqueue_that_fails_halfway_leaves_no_job_behind(backend: str, tmp_path: Path, size: int) -> None:
    url, prefix = backend_url(backend, tmp_path), f"t_{secrets.token_hex(4)}"
    db = open_db(url, prefix)
    try:
        # The jobs and ready rows go in, then the scheduled rows find no table.
        db.transact(lambda tx: tx.conn.execute(text(f"DROP TABLE {prefix}_scheduled_executions")))
        batch = [new_job(db) for _ in range(size - 1)] + [new_job(db, in_seconds=60)]
        with pytest.raises(MissingTables, match="do not exist"):
            db.transact(jobs.enqueue_many, batch)
        assert count_rows(db, "jobs") == 0
        assert count_rows(db, "ready_executions") == 0
    finally:
        db.dispose()
        drop_prefix(url, prefix)


def test_enqueue_many_keeps_the_time_of_scheduled_jobs_to_the_microsecond(db: Database) -> None:
    at = db.clock.now().replace(microsecond=123456) + timedelta(hours=1)
    (job_id,) = enqueue(db, new_job(db, at=at))
    assert job_row(db, job_id).scheduled_at == at


def test_create_tables_is_idempotent(db: Database) -> None:
    (job_id,) = enqueue(db, new_job(db))
    assert db.create_tables() is True
    assert db.create_tables() is True
    assert state_of(db, job_id) == JobState.READY
    assert count_rows(db, "jobs") == 1


def test_cancel_finishes_jobs_that_have_not_started_and_leaves_the_rest(db: Database) -> None:
    waiting, later, running, broken = enqueue(
        db, new_job(db, priority=5), new_job(db, in_seconds=60), new_job(db, priority=0), new_job(db, priority=1)
    )
    pid = register(db)
    assert sorted(claimed_ids(db, pid, limit=2)) == sorted([running, broken])
    db.transact(claimed.fail, process_id=pid, job_id=broken, error=ErrorInfo("E", "m"))
    cancelled = db.transact(jobs.cancel, job_ids=[waiting, later, running, broken, 10**12])
    assert cancelled == sorted([waiting, later])
    assert [state_of(db, j) for j in (waiting, later, running, broken)] == [
        JobState.FINISHED,
        JobState.FINISHED,
        JobState.CLAIMED,
        JobState.FAILED,
    ]
    assert job_row(db, waiting).finished_at == db.clock.now()
    assert db.transact(jobs.cancel, job_ids=[waiting]) == []


def test_a_bulk_enqueue_whose_connection_dies_at_the_copy_is_rerun_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    url, prefix = backend_url("postgresql", tmp_path), f"t_{secrets.token_hex(4)}"
    db = open_db(url, prefix)
    dialect_class = type(db.dialect)
    copy_rows = dialect_class.copy_rows
    killed: list[int] = []

    def lose_the_connection_then_copy(self: Any, conn: Any, table: Any, columns: Any, rows: Any) -> None:
        if table is db.tables.jobs and not killed:
            # The ids are drawn; now the server goes away, as in a restart or a network cut.
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
            with psycopg.connect(url, autocommit=True) as other:
                other.execute("SELECT pg_terminate_backend(%s)", (pid,))
            killed.append(pid)
        copy_rows(self, conn, table, columns, rows)

    monkeypatch.setattr(dialect_class, "copy_rows", lose_the_connection_then_copy)
    try:
        batch = [new_job(db, priority=i % 3) for i in range(jobs.BULK * 3)]
        enqueued = db.transact(jobs.enqueue_many, batch)
        assert killed, "the connection was never cut"
        t = db.tables
        by_id = dict(db.read(lambda tx: tx.conn.execute(select(t.jobs.c.id, t.jobs.c.active_job_id)).all()))
        assert by_id == {e.id: j.active_job_id for e, j in zip(enqueued, batch, strict=True)}
        assert count_rows(db, "ready_executions") == len(batch)
    finally:
        db.dispose()
        drop_prefix(url, prefix)
