"""Shared pieces of the store conformance suite: a Database on a FrozenClock, job factories, reads.

Not a conftest: tests import what they use, so each file says where its helpers come from.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from quebec.clock import FrozenClock
from quebec.store import Database, jobs, processes, queries, ready
from quebec.types import ClaimedJob, JobState, NewJob, ProcessInfo, QueueSelector

_serial = itertools.count(1)


def open_db(db_url: str, prefix: str) -> Database:
    database = Database(db_url, prefix=prefix, clock=FrozenClock())
    database.connect()
    database.create_tables()
    return database


def db_fixture(db_url: str, prefix: str) -> Iterator[Database]:
    """Body of each file's `db` fixture: a Database on a FrozenClock with its tables created."""
    database = open_db(db_url, prefix)
    yield database
    database.dispose()


def clock_of(db: Database) -> FrozenClock:
    assert isinstance(db.clock, FrozenClock)
    return db.clock


def new_job(db: Database, *, queue: str = "default", priority: int = 0, class_name: str = "ExampleJob",
            in_seconds: float = 0.0, at: datetime | None = None, active_job_id: str | None = None) -> NewJob:
    """A NewJob due `in_seconds` from the database clock's now (or at `at`)."""
    n = next(_serial)
    when = at if at is not None else db.clock.now() + timedelta(seconds=in_seconds)
    return NewJob(queue_name=queue, class_name=class_name, arguments=f'{{"n":{n}}}', priority=priority,
                  active_job_id=active_job_id or f"aj{n:010d}", scheduled_at=when)


def enqueue(db: Database, *new_jobs: NewJob) -> list[int]:
    return [e.id for e in db.transact(jobs.enqueue_many, list(new_jobs))]


def register(db: Database, kind: str = "Worker") -> int:
    return db.transact(processes.register, info=ProcessInfo(kind=kind, name=f"{kind.lower()}-{next(_serial)}",
                                                             pid=12345, hostname="test-host"))


def claim(db: Database, process_id: int, *, limit: int = 100, queues: tuple[str, ...] = ("*",)) -> list[ClaimedJob]:
    return db.transact(ready.claim, queues=QueueSelector(queues), limit=limit, process_id=process_id)


def claimed_ids(db: Database, process_id: int, *, limit: int = 100, queues: tuple[str, ...] = ("*",)) -> list[int]:
    return [j.id for j in claim(db, process_id, limit=limit, queues=queues)]


def state_of(db: Database, job_id: int) -> JobState | None:
    row = db.read(queries.get_job, job_id=job_id)
    return None if row is None else row.state


def job_row(db: Database, job_id: int) -> queries.JobRow:
    row = db.read(queries.get_job, job_id=job_id)
    assert row is not None, f"job {job_id} has no row"
    return row


def count_rows(db: Database, table_name: str) -> int:
    table = getattr(db.tables, table_name)
    return int(db.read(lambda tx: tx.conn.execute(select(func.count()).select_from(table)).scalar()) or 0)


def known_bug(request: pytest.FixtureRequest, backend: str, on: tuple[str, ...], reason: str) -> None:
    """Mark this test a strict xfail on the backends where a known src bug makes it fail."""
    if backend in on:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))
