"""SQLite: one writer at a time, so claims need no row locks but need the write lock up front."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Integer, Table, bindparam, cast, event, func, insert, select
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.elements import ColumnElement

from quebec.dialects.base import Dialect

_BUSY_MS = 5000
log = logging.getLogger("quebec.worker")


class SQLiteDialect(Dialect):
    name = "sqlite"
    single_writer = True
    embedded = True

    def __init__(self, url: URL, *, path: str | None, read_only: bool, use_skip_locked: bool = True) -> None:
        super().__init__(url, use_skip_locked=use_skip_locked)
        self.path = path  # the file, or None in memory
        # mode=ro: SQLite refuses every write, so enqueue and a worker's registration fail
        # with is_read_only's sentence; tables are not created.
        self.read_only = read_only
        self.busy_ms = _BUSY_MS

    @property
    def in_memory(self) -> bool:
        return self.path is None

    def engine_options(self) -> dict[str, Any]:
        if self.in_memory:
            # One shared connection, or each thread would see its own empty database.
            return {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
        return {"pool_size": 12, "max_overflow": 20}

    default_connect_timeout = _BUSY_MS / 1000

    def timeout_args(self, seconds: float) -> dict[str, Any]:
        # SQLite has no connection to wait for, but a lock: the timeout is how long a
        # statement waits for another writer (busy_timeout) before "database is locked".
        self.busy_ms = int(seconds * 1000)
        return {} if self.in_memory else {"timeout": seconds}

    def on_engine(self, engine: Engine) -> None:
        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
            # Take transaction control away from pysqlite (SQLAlchemy's documented recipe),
            # so that we can say BEGIN IMMEDIATE for writes.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            if not self.in_memory and not self.read_only:
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                # A bulk enqueue writes megabytes: a 2 MB page cache would spill mid-transaction.
                cur.execute("PRAGMA cache_size=-32768")
                # Checkpoint every ~40 MB of WAL instead of 4: a queue rewrites the same hot
                # pages (ready rows, claims) over and over, and each checkpoint copies a page
                # once however often it changed; 4 MB made every 10,000-job enqueue pay one.
                cur.execute("PRAGMA wal_autocheckpoint=10000")
            cur.execute(f"PRAGMA busy_timeout={self.busy_ms}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            mode = conn.info.pop("quebec_begin", "")
            conn.exec_driver_sql(f"BEGIN {mode}".strip())

    def read_limits(self, conn: Connection, jobs: Table) -> None:
        raw = conn.connection.driver_connection
        most = raw.getlimit(sqlite3.SQLITE_LIMIT_LENGTH) if raw is not None else 1_000_000_000
        self.arguments_limit = (most, "SQLite's SQLITE_MAX_LENGTH")

    def begin_write(self, conn: Connection) -> None:
        # A deferred transaction that later writes fails with SQLITE_BUSY at once,
        # skipping busy_timeout; taking the write lock up front makes it wait instead.
        conn.info["quebec_begin"] = "IMMEDIATE"
        conn.begin()

    placeholder = "?"

    def bucket_index(self, start: Any, end: Any, seconds: int) -> Any:
        # Timestamps are ISO text here; julianday reads them (fractions of a second included).
        return cast((func.julianday(end) - func.julianday(start)) * 86400.0 / seconds, Integer)

    def to_db(self, value: Any) -> Any:
        # The same text SQLAlchemy's SQLite DATETIME writes, so comparisons stay textual.
        if isinstance(value, datetime):
            return f"{value:%Y-%m-%d %H:%M:%S.%f}"
        return value

    def insert_returning_ids(
        self, conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, key: str
    ) -> list[int]:
        # Multi-row VALUES instead of RETURNING: our BEGIN IMMEDIATE holds the only write
        # lock, and AUTOINCREMENT gives each row max(id)+1, so the rows we insert get
        # consecutive ids ending at last_insert_rowid(). 500 rows a statement, not one
        # (executemany): AUTOINCREMENT reads and writes sqlite_sequence once per statement,
        # which made 10,000 jobs take 38 ms instead of 19.
        if not rows:
            return []
        raw = conn.connection.driver_connection
        limit = raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) if raw is not None else 999
        per = max(1, min(500, limit // len(columns)))
        last = 0
        for start in range(0, len(rows), per):
            chunk = rows[start : start + per]
            done = conn.exec_driver_sql(
                self.insert_sql(conn, table, columns, len(chunk)), tuple([value for row in chunk for value in row])
            )
            last = int(done.lastrowid)  # the cursor's last_insert_rowid(): no SELECT for it
        return list(range(last - len(rows) + 1, last + 1))

    def insert_if_absent(self, conn: Connection, table: Table, values: dict[str, Any]) -> bool:  # type: ignore[override]
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        result = conn.execute(sqlite_insert(table).values(**values).on_conflict_do_nothing())
        return bool(result.rowcount)

    def ids_in(self, column: ColumnElement[Any], name: str = "ids") -> ColumnElement[bool]:
        # The list as one JSON text, read by json_each: the statement text is the same for
        # any number of ids, so it is rendered once and sqlite3 keeps it prepared.
        values = func.json_each(bindparam(name)).table_valued("value")
        return column.in_(select(values.c.value))

    def ids_value(self, ids: Sequence[int]) -> Any:
        return json.dumps([int(i) for i in ids])

    def commit_signal(self) -> WalSignal | None:
        if self.in_memory or self.read_only or self.path is None or not WalSignal.available():
            return None
        return WalSignal(self.path + "-wal")

    def change_watcher(self) -> DataVersionWatcher | None:
        if self.in_memory:
            return None  # one process, whose enqueues wake its workers directly
        return DataVersionWatcher(str(self.path))

    def is_transient(self, exc: BaseException) -> bool:
        if isinstance(exc, OperationalError):
            text = str(exc.orig).lower()
            return "locked" in text or "busy" in text
        return isinstance(exc, DBAPIError) and exc.connection_invalidated

    def is_read_only(self, exc: BaseException) -> bool:
        return isinstance(exc, DBAPIError) and "readonly" in str(exc.orig)

    def is_missing_table(self, exc: BaseException) -> bool:
        return isinstance(exc, DBAPIError) and "no such table" in str(exc.orig)

    def is_duplicate_key(self, exc: BaseException) -> bool:
        return isinstance(exc, DBAPIError) and "UNIQUE constraint failed" in str(exc.orig)


class DataVersionWatcher:
    """`PRAGMA data_version` on a connection of its own, which never writes: the number
    changes whenever another connection, in any process, commits. Reading it looks at the
    WAL index in shared memory (3 µs, no lock, no I/O), so an idle worker can ask every few
    milliseconds and query for ready jobs only when something changed."""

    def __init__(self, path: str) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._last: int | None = None

    def changed(self) -> bool:
        version = int(self._conn.execute("PRAGMA data_version").fetchone()[0])
        changed, self._last = version != self._last, version
        return changed

    def close(self) -> None:
        self._conn.close()


class WalSignal:
    """Calls back when the database's WAL file is written, which every commit does, from any
    process: inotify on Linux. An idle worker then sleeps until something happened instead
    of waking every few ms to ask data_version (each wake-up costs ~150 µs of CPU on a VM:
    a 3 ms tick was 5% of a core). Where inotify is missing it is not used, and the worker
    ticks as before."""

    _READ_MS = 500  # how long one read waits: the thread notices close() within this

    def __init__(self, wal_path: str) -> None:
        self._path = wal_path
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def available() -> bool:
        try:
            import inotify_simple  # noqa: F401
        except ImportError:
            return False
        return True

    def start(self, on_change: Callable[[], None]) -> bool:
        """Watch from a thread of its own; False (and nothing started) if the file cannot be watched."""
        from inotify_simple import INotify, flags

        try:
            notify = INotify()
            notify.add_watch(self._path, flags.MODIFY)
        except OSError:
            return False
        self._thread = threading.Thread(
            target=self._run, args=(notify, on_change), name="quebec-wal-signal", daemon=True
        )
        self._thread.start()
        return True

    def _run(self, notify: Any, on_change: Callable[[], None]) -> None:
        try:
            while not self._stop.is_set():
                if notify.read(timeout=self._READ_MS):
                    on_change()
        except Exception as exc:  # noqa: BLE001 - the worker falls back to its polling interval
            log.warning("sqlite.wal_signal_failed error=%r: polling instead", exc)
        finally:
            notify.close()

    def close(self) -> None:
        self._stop.set()


__all__ = ["DataVersionWatcher", "SQLiteDialect", "WalSignal", "insert"]
