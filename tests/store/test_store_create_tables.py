"""create_tables() run by several processes at once on a brand-new SQLite file.

A worker and an enqueuing process started together both create the tables. The schema
pass used to read (create_all's checkfirst) in a deferred transaction and then write: when
the other process held the write lock, SQLite refused the read-to-write upgrade at once
with "database is locked" (it never waits on busy_timeout for an upgrade), and the one
retry 0.2 s later failed the same way while the other was still creating.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

from sqlalchemy import inspect, select

from quebec.schema import SCHEMA_VERSION, build_tables
from quebec.schema import create_tables as schema_create_tables
from quebec.store import Database

_ROUNDS = 8
_DEADLINE = 60.0  # seconds a round may take before the test calls it hung


def _create(url: str, start: Event, results: Any, whole: bool) -> None:
    try:
        database = Database(url, prefix="quebec")
        start.wait(_DEADLINE)
        if whole:
            database.connect()  # what Quebec() does: embedded SQLite creates the tables here
        else:
            # The schema pass alone, as Database.create_tables calls it but without its retry.
            schema_create_tables(database.engine, database.tables, database.dialect.begin_write)
        database.dispose()
        results.put("ok")
    except Exception as exc:  # noqa: BLE001 - the parent asserts on it
        results.put(f"{type(exc).__name__}: {exc}")


def _race(tmp_path: Path, whole: bool) -> None:
    ctx = multiprocessing.get_context("spawn")
    for round_ in range(_ROUNDS):
        path = tmp_path / f"new-{round_}.db"
        url = f"sqlite:///{path}?mode=rwc"
        start, results = ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=_create, args=(url, start, results, whole)) for _ in range(2)]
        for proc in procs:
            proc.start()
        start.set()
        outcomes = [results.get(timeout=_DEADLINE) for _ in procs]
        for proc in procs:
            proc.join(_DEADLINE)
            assert proc.exitcode == 0, f"round {round_}: a creating process did not exit"
        assert outcomes == ["ok", "ok"], f"round {round_}: {outcomes}"
        _assert_complete(path)


def _assert_complete(path: Path) -> None:
    tables = build_tables("quebec")
    database = Database(f"sqlite:///{path}", prefix="quebec")
    try:
        with database.engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) >= {t.name for t in tables.metadata.sorted_tables}
            versions = conn.execute(select(tables.schema_migrations.c.version)).scalars().all()
        assert sorted(versions) == list(range(1, SCHEMA_VERSION + 1))
    finally:
        database.dispose()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_two_processes_creating_the_schema_on_a_new_file_at_once_both_succeed(tmp_path: Path) -> None:
    _race(tmp_path, whole=False)


def test_two_processes_opening_a_new_sqlite_file_at_once_both_connect(tmp_path: Path) -> None:
    _race(tmp_path, whole=True)
