"""Shared pieces of the store conformance suite: a Database on a FrozenClock, job factories, reads.

Not a conftest: tests import what they use, so each file says where its helpers come from
(a second module named conftest would hide the root one's helpers). The fixtures too:
a module imports `db_fixture` and `tables_fixture` (each marked `# noqa: F401 - a fixture`)
to get the `db` and `tables` fixtures. Their function names differ from the fixture names,
so that a test's `db` parameter does not redefine an imported name (ruff F811).
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from conftest import backend_url, drop_prefix
from quebec.clock import FrozenClock
from quebec.store import Database, Tx, jobs, processes, queries, ready
from quebec.types import ClaimedJob, JobState, NewJob, ProcessInfo, QueueSelector

_serial = itertools.count(1)


def open_db(db_url: str, prefix: str) -> Database:
    database = Database(db_url, prefix=prefix, clock=FrozenClock())
    database.connect()
    database.create_tables()
    return database


class SharedTables:
    """The tables of one test module, per backend: created once, emptied before each test.

    Creating fifteen tables costs about a second on MariaDB; deleting their rows costs
    a few milliseconds. Each test still gets empty tables and its own FrozenClock.
    """

    def __init__(self, tmp_path: Path) -> None:
        self._tmp_path = tmp_path
        self._made: dict[str, tuple[str, str, Database]] = {}

    def fresh(self, backend: str) -> Database:
        if backend not in self._made:
            url, prefix = backend_url(backend, self._tmp_path), f"t_{secrets.token_hex(4)}"
            self._made[backend] = (url, prefix, open_db(url, prefix))
        database = self._made[backend][2]
        database.clock = FrozenClock()
        database.transact(_empty)
        return database

    def close(self) -> None:
        for url, prefix, database in self._made.values():
            database.dispose()
            drop_prefix(url, prefix)


@pytest.fixture(scope="module", name="tables")
def tables_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedTables]:
    """The importing module's SharedTables: its tables, created on first use per backend."""
    shared = SharedTables(tmp_path_factory.mktemp("store"))
    yield shared
    shared.close()


@pytest.fixture(name="db")
def db_fixture(backend: str, tables: SharedTables) -> Database:
    """A Database on this module's tables, emptied, on a new FrozenClock (once per backend)."""
    return tables.fresh(backend)


def _empty(tx: Tx) -> None:
    for table in reversed(tx.tables.metadata.sorted_tables):
        if table is not tx.tables.schema_migrations:
            tx.conn.execute(delete(table))


def clock_of(db: Database) -> FrozenClock:
    assert isinstance(db.clock, FrozenClock)
    return db.clock


def new_job(
    db: Database,
    *,
    queue: str = "default",
    priority: int = 0,
    class_name: str = "ExampleJob",
    in_seconds: float = 0.0,
    at: datetime | None = None,
    active_job_id: str | None = None,
) -> NewJob:
    """A NewJob due `in_seconds` from the database clock's now (or at `at`)."""
    n = next(_serial)
    when = at if at is not None else db.clock.now() + timedelta(seconds=in_seconds)
    return NewJob(
        queue_name=queue,
        class_name=class_name,
        arguments=f'{{"n":{n}}}',
        priority=priority,
        active_job_id=active_job_id or f"aj{n:010d}",
        scheduled_at=when,
    )


def enqueue(db: Database, *new_jobs: NewJob) -> list[int]:
    return [e.id for e in db.transact(jobs.enqueue_many, list(new_jobs))]


def register(db: Database, kind: str = "Worker") -> int:
    return db.transact(
        processes.register,
        info=ProcessInfo(kind=kind, name=f"{kind.lower()}-{next(_serial)}", pid=12345, hostname="test-host"),
    )


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
