"""MySQL: a one-job enqueue is one packet (INSERT, INSERT, COMMIT) — one round trip, atomic,
and never sent inside a transaction of the caller's, which its COMMIT would end."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from store_support import count_rows, job_row, new_job, open_db

from conftest import backend_url, drop_prefix
from quebec.errors import QuebecError
from quebec.store import jobs
from quebec.store.database import Database
from quebec.types import JobState


@pytest.fixture
def mysql_db(tmp_path: Path) -> Iterator[Database]:
    url, prefix = backend_url("mysql", tmp_path), f"t_{secrets.token_hex(4)}"
    db = open_db(url, prefix)
    try:
        yield db
    finally:
        db.dispose()
        drop_prefix(url, prefix)


def _count_round_trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    import pymysql.connections

    sent: list[str] = []
    connection = pymysql.connections.Connection
    query, commit, rollback = connection.query, connection.commit, connection.rollback

    def counted_query(self: connection, sql: str | bytes, unbuffered: bool = False) -> int:
        sent.append(sql.decode() if isinstance(sql, bytes) else sql)
        return query(self, sql, unbuffered)

    def counted(name: str, real: object) -> object:
        def call(self: connection) -> None:
            sent.append(name)
            real(self)  # type: ignore[operator]

        return call

    monkeypatch.setattr(connection, "query", counted_query)
    monkeypatch.setattr(connection, "commit", counted("COMMIT", commit))
    monkeypatch.setattr(connection, "rollback", counted("ROLLBACK", rollback))
    return sent


@pytest.mark.parametrize("in_seconds", [0.0, 3600.0])
def test_a_one_job_enqueue_is_one_round_trip_and_writes_both_rows(
    mysql_db: Database, monkeypatch: pytest.MonkeyPatch, in_seconds: float
) -> None:
    db = mysql_db
    db.transact(jobs.enqueue_many, [new_job(db)])  # the pool's first connection is set up
    sent = _count_round_trips(monkeypatch)
    (done,) = db.transact(jobs.enqueue_many, [new_job(db, in_seconds=in_seconds)]).ids
    assert len(sent) == 1, sent
    assert sent[0].rstrip().endswith("COMMIT")
    expected = JobState.SCHEDULED if in_seconds else JobState.READY
    assert job_row(db, done).state is expected
    assert count_rows(db, "ready_executions") == (1 if in_seconds else 2)
    assert count_rows(db, "scheduled_executions") == (1 if in_seconds else 0)


def test_an_enqueue_inside_the_callers_transaction_is_not_committed_by_it(mysql_db: Database) -> None:
    db = mysql_db
    with db.engine.connect() as conn:
        conn.begin()
        jobs.enqueue_many(db.join(conn), [new_job(db)])
        conn.rollback()
    assert count_rows(db, "jobs") == 0
    assert count_rows(db, "ready_executions") == 0


def test_a_packet_that_fails_after_its_first_insert_leaves_no_job_behind(mysql_db: Database) -> None:
    db = mysql_db
    db.transact(jobs.enqueue_many, [new_job(db)])
    with db.engine.begin() as conn:  # the execution row's INSERT, second in the packet, now fails
        conn.exec_driver_sql(f"RENAME TABLE {db.tables.ready_executions.name} TO {db.tables.ready_executions.name}_x")
    try:
        with pytest.raises(QuebecError):
            db.transact(jobs.enqueue_many, [new_job(db)])
    finally:
        with db.engine.begin() as conn:
            conn.exec_driver_sql(
                f"RENAME TABLE {db.tables.ready_executions.name}_x TO {db.tables.ready_executions.name}"
            )
    assert count_rows(db, "jobs") == 1  # the first enqueue's; the failed one's INSERT was rolled back
