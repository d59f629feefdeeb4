"""How Database hands connections back to the pool: clean, and without wasted round trips."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.pool import NullPool
from store_support import new_job, open_db

from conftest import backend_url, drop_prefix
from quebec.store import jobs


def test_mysql_rolls_back_on_return_only_what_is_still_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pymysql.connections

    url, prefix = backend_url("mysql", tmp_path), f"t_{secrets.token_hex(4)}"
    db = open_db(url, prefix)
    rollbacks: list[object] = []
    rollback = pymysql.connections.Connection.rollback

    def counted(self: pymysql.connections.Connection) -> None:
        rollbacks.append(self)
        rollback(self)

    monkeypatch.setattr(pymysql.connections.Connection, "rollback", counted)
    try:
        # A committed transaction needs no ROLLBACK: that was one round trip per transaction.
        db.transact(jobs.enqueue_many, [new_job(db)])
        db.read(lambda tx: tx.conn.execute(select(db.tables.jobs.c.id)).all())
        assert rollbacks == []
        # A connection handed back otherwise is rolled back: with autocommit off even a
        # SELECT holds metadata locks until its transaction ends, blocking DDL.
        raw = db.engine.raw_connection()
        cursor = raw.cursor()
        cursor.execute(f"SELECT COUNT(*) FROM {prefix}_jobs")
        cursor.close()
        raw.close()
        assert len(rollbacks) == 1
        other = create_engine(db.engine.url, poolclass=NullPool)  # a connection of its own
        try:
            with other.connect() as conn:
                conn.exec_driver_sql("SET SESSION lock_wait_timeout = 2")
                conn.exec_driver_sql(f"ALTER TABLE {prefix}_jobs COMMENT = 'not blocked'")
        finally:
            other.dispose()
    finally:
        db.dispose()
        drop_prefix(url, prefix)


def test_postgres_one_statement_enqueue_hands_its_connection_back_out_of_autocommit(tmp_path: Path) -> None:
    url, prefix = backend_url("postgresql", tmp_path), f"t_{secrets.token_hex(4)}"
    db = open_db(url, prefix)
    try:
        for _ in range(3):  # one pooled connection, used alone each time
            db.transact(jobs.enqueue_many, [new_job(db)])
        with db.engine.connect() as conn:
            assert conn.connection.driver_connection.autocommit is False  # type: ignore[union-attr]
        # ...so a transaction on it is still one: its writes go or stay together.
        with pytest.raises(RuntimeError), db.engine.connect() as conn:
            conn.begin()
            jobs.enqueue_many(db.join(conn), [new_job(db)])
            raise RuntimeError("rolled back")
        assert len(db.read(lambda tx: tx.conn.execute(select(db.tables.jobs.c.id)).all())) == 3
    finally:
        db.dispose()
        drop_prefix(url, prefix)
