"""Dialect: what differs per database, behind a small set of hooks.

The portable default of every hook lives here; a subclass overrides only what its
database does differently and says why. Nothing outside quebec/dialects asks
which database it is talking to: it asks a capability flag or calls a hook.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, Select, Table, bindparam, delete, func, select
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import ColumnElement

from quebec.errors import ConfigError
from quebec.types import CommitSignal


class ChangeWatcher(Protocol):
    def changed(self) -> bool:
        """True if a commit may have happened since the previous call (and on the first)."""

    def close(self) -> None: ...


class Dialect:
    name = "generic"
    # True when claims can skip rows other transactions hold (FOR UPDATE SKIP LOCKED).
    supports_skip_locked = False
    # True when other processes can wake our workers through the database (LISTEN/NOTIFY).
    supports_listen = False
    # True when the database allows one writer at a time (claims need no row locks).
    single_writer = False
    # True when DELETE/INSERT … RETURNING can be chained in one WITH statement, so a
    # claim is one round trip instead of four.
    supports_modifying_cte = False
    # True for an embedded database the application owns (a file): its tables are
    # created on first connect, as there is no DBA or DDL permission to respect.
    embedded = False
    # True when the URL opens the database read-only (SQLite's mode=ro): nothing is created.
    read_only = False

    def __init__(self, url: URL, *, use_skip_locked: bool = True) -> None:
        self.url = url
        self.use_skip_locked = use_skip_locked

    # -- engine ---------------------------------------------------------------------------
    def engine_options(self) -> dict[str, Any]:
        # No pre-ping: it would cost a round trip per transaction. A connection that died
        # in the pool fails its first statement, and transact() reruns the transaction.
        return {"pool_size": 10, "max_overflow": 20}

    # How long to wait for a connection when the settings say nothing (db_connect_timeout):
    # libpq would otherwise wait forever for a host that does not answer.
    default_connect_timeout = 10.0

    def timeout_args(self, seconds: float) -> dict[str, Any]:
        """Driver arguments that bound opening a connection to `seconds`."""
        return {"connect_timeout": max(1, round(seconds))}

    def ssl_connect_args(self, options: Mapping[str, str]) -> dict[str, str]:
        """Driver arguments for sslmode/sslrootcert/sslcert/sslkey; only PostgreSQL takes them."""
        if options:
            raise ConfigError(
                f"{', '.join(sorted(options))} {'applies' if len(options) == 1 else 'apply'} only to PostgreSQL, "
                f"but the database URL is {self.url.render_as_string(hide_password=True)!r}; remove the ssl "
                f"options or use a postgresql:// URL"
            )
        return {}

    # -- limits ---------------------------------------------------------------------------
    # The most bytes one jobs.arguments value may take here, and what sets that limit (for
    # the enqueue error); learnt by read_limits at connect, None until then.
    arguments_limit: tuple[int, str] | None = None

    def read_limits(self, conn: Connection, jobs: Table) -> None:
        """Learn arguments_limit from the server, and from the jobs table where its column type
        sets it (the table may not exist yet: then again after create_tables)."""

    def on_engine(self, engine: Engine) -> None:
        """Install event hooks (connect, begin) on a new engine."""

    def check_server(self, conn: Connection) -> None:
        """Refuse a server that lacks what we need, in one sentence."""

    # -- transactions ---------------------------------------------------------------------
    def begin_write(self, conn: Connection) -> None:
        conn.begin()

    def begin_read(self, conn: Connection) -> None:
        conn.begin()

    def after_commit(self, conn: Connection) -> None:
        """Called once a transaction of ours has committed, before the connection goes back
        to the pool (MySQL then skips the pool's ROLLBACK)."""

    # -- statements -----------------------------------------------------------------------
    def in_index_order(self, stmt: Select[Any], table: Table, index: str) -> Select[Any]:
        """`stmt` reading `table` along `index`, where the planner would otherwise sort (and
        lock) every row it matches to return the first few."""
        return stmt

    def lock_skip_locked(self, stmt: Select[Any]) -> Select[Any]:
        if self.supports_skip_locked and self.use_skip_locked:
            return stmt.with_for_update(skip_locked=True)
        return stmt

    # -- id lists: a claim or a finish names up to a few hundred jobs ------------------------
    def ids_in(self, column: ColumnElement[Any], name: str = "ids") -> ColumnElement[bool]:
        """`column` is in the id list bound to parameter `name` (its value: ids_value()).

        The portable form expands to one placeholder per id when it runs, which SQLAlchemy
        renders anew every time; a database that can take the list as one value overrides
        it, so the statement is rendered once and cached."""
        return column.in_(bindparam(name, expanding=True))

    def ids_value(self, ids: Sequence[int]) -> Any:
        """The value of an ids_in() parameter."""
        return list(ids)

    def in_subquery(self, column: ColumnElement[Any], subquery: Select[Any]) -> ColumnElement[bool]:
        """`column` is among the rows of `subquery` (a claim's picked rows)."""
        return column.in_(subquery)

    def delete_by_id(self, conn: Connection, table: Table, ids: Sequence[int]) -> None:
        """Delete the rows of `table` with these primary keys, which this transaction has
        locked; looking at (and waiting for) no other row."""
        conn.execute(delete(table).where(self.ids_in(table.c.id)), {"ids": self.ids_value(ids)})

    def delete_by_id_and_insert(
        self,
        conn: Connection,
        table: Table,
        ids: Sequence[int],
        into: Table,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
    ) -> None:
        """delete_by_id, then insert_rows into `into` (driver values, as insert_rows takes
        them): a claim's two writes, ready rows out and claims in, which a database may
        send together."""
        self.delete_by_id(conn, table, ids)
        self.insert_rows(conn, into, columns, rows)

    def delete_returning(
        self, conn: Connection, table: Table, where: ColumnElement[bool], params: Mapping[str, Any] | None = None
    ) -> list[int]:
        """Delete execution rows matching `where` (its bound `params`); return their job_ids."""
        rows = conn.execute(delete(table).where(where).returning(table.c.job_id), params)
        return [r[0] for r in rows]

    # -- bulk inserts: the enqueue hot path, so plain driver SQL, not per-row Core compilation
    placeholder = "%s"
    chunk_rows = 1000

    def insert_sql(self, conn: Connection, table: Table, columns: Sequence[str], rows: int = 1) -> str:
        quote = conn.dialect.identifier_preparer.quote
        one = "(" + ", ".join([self.placeholder] * len(columns)) + ")"
        return (
            f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) VALUES {', '.join([one] * rows)}"
        )

    # How many jobs enqueue_in_one_statement takes at most (0: it is not offered).
    jobs_per_enqueue_statement = 0

    @contextmanager
    def alone(self, conn: Connection) -> Iterator[Connection]:
        """`conn` set up, for the block, for a call that is one statement and its own
        transaction (store.database.one_statement_when): autocommit, no BEGIN and COMMIT."""
        yield conn.execution_options(isolation_level="AUTOCOMMIT")

    def enqueue_in_one_statement(
        self,
        conn: Connection,
        jobs: Table,
        ready: Table,
        scheduled: Table,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        now: Any,
        channel: str | None,
    ) -> list[tuple[int, bool]] | None:
        """Insert jobs and their ready/scheduled rows (and wake listeners) in one statement;
        returns (id, scheduled?) in input order, or None where the database cannot."""
        return None

    # True when rows can be streamed in with COPY (reserve_ids + copy_rows below): the
    # fastest way in for a bulk enqueue, where several statements cost nothing extra.
    supports_copy = False

    def reserve_ids(self, conn: Connection, table: Table, count: int) -> list[int]:
        """`count` new values of table's id sequence, for rows inserted with explicit ids."""
        raise NotImplementedError(f"{self.name} has no sequences to draw ids from")

    def copy_rows(self, conn: Connection, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """Stream rows into table with COPY, in the connection's transaction."""
        raise NotImplementedError(f"{self.name} has no COPY")

    def to_db(self, value: Any) -> Any:
        """A Python value as the driver should receive it (SQLite stores datetimes as text)."""
        return value

    def insert_rows(
        self, conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Insert many rows, ids not needed (execution rows)."""
        if rows:
            conn.exec_driver_sql(self.insert_sql(conn, table, columns), [tuple(r) for r in rows])

    def insert_returning_ids(
        self, conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, key: str
    ) -> list[int]:
        """Insert many rows; return their new ids in input order. `key` names a unique column,
        used to match RETURNING rows (whose order no database promises) to input rows."""
        quote = conn.dialect.identifier_preparer.quote
        k = list(columns).index(key)
        ids: dict[Any, int] = {}
        for chunk in self.chunks(columns, rows):
            sql = self.insert_sql(conn, table, columns, len(chunk)) + f" RETURNING {quote('id')}, {quote(key)}"
            flat = tuple(v for row in chunk for v in row)
            ids.update((r[1], r[0]) for r in conn.exec_driver_sql(sql, flat))
        return [ids[row[k]] for row in rows]

    def chunks(self, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Iterator[Sequence[Sequence[Any]]]:
        """`rows` in slices of at most chunk_rows: one multi-row INSERT each."""
        for start in range(0, len(rows), self.chunk_rows):
            yield rows[start : start + self.chunk_rows]

    def insert_if_absent(self, conn: Connection, table: Table, values: Mapping[str, Any]) -> bool:
        """Insert unless a unique key already exists; True when inserted."""
        raise NotImplementedError

    def notify(self, conn: Connection, channel: str, payload: str) -> None:
        """Wake listeners in other processes after this transaction commits (if supported)."""

    def listener(self, channel: str, on_message: Callable[[str], None]) -> Any:
        raise NotImplementedError(f"{self.name} has no LISTEN/NOTIFY")

    def commit_signal(self) -> CommitSignal | None:
        """Something that calls back when anyone may have committed, so an idle worker sleeps
        instead of ticking; None where the database offers none."""
        return None

    def change_watcher(self) -> ChangeWatcher | None:
        """A cheap way to ask whether anyone has committed since the last asking, for idle
        workers to poll often without querying; None where the database offers none."""
        return None

    # -- errors ---------------------------------------------------------------------------
    def is_transient(self, exc: BaseException) -> bool:
        """True when rerunning the whole transaction may succeed."""
        return isinstance(exc, DBAPIError) and exc.connection_invalidated

    def is_duplicate_key(self, exc: BaseException) -> bool:
        return False

    def is_read_only(self, exc: BaseException) -> bool:
        """True when the database refused a write because it is read-only."""
        return False

    def is_missing_table(self, exc: BaseException) -> bool:
        return False

    def ids_for_update(
        self, conn: Connection, table: Table, where: ColumnElement[bool], params: Mapping[str, Any] | None = None
    ) -> list[int]:
        stmt = select(table.c.job_id).where(where).with_for_update()
        return list(conn.scalars(stmt, params))

    # -- read models (the dashboard) ------------------------------------------------------
    def estimated_rows(self, conn: Connection, table: Table) -> int | None:
        """The planner's estimate of `table`'s row count where one is cheap to read; None
        where there is none (then the caller counts exactly)."""
        return None

    def bucket_index(self, start: Any, end: Any, seconds: int) -> ColumnElement[int]:
        """SQL: which `seconds`-long bucket after `start` the timestamp `end` falls in (end ≥ start)."""
        # date_part is double precision (extract is numeric from PG 14 on: slower per row)
        return func.floor(func.date_part("epoch", end - start) / seconds)
