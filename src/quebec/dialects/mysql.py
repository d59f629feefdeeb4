"""MySQL 8 / MariaDB 10.6+: SKIP LOCKED, no RETURNING on MySQL, 1062/1213/1205 errors."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, Select, Table, delete, event, func, insert, literal_column, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from quebec.dialects.base import Dialect
from quebec.dialects.mysql_packets import EnqueuePacket, client_flags, run_packet
from quebec.errors import ConfigError

_CHUNK = 1000
# Room in a packet for the statement around one job's arguments.
_PACKET_MARGIN = 64 * 1024
_ROW_BYTES = 2048  # a job row's columns but its arguments, escaped, at most
_COMMITTED = "quebec_committed"  # connection info: nothing has run since our COMMIT
_TRANSIENT_CODES = {1213, 1205, 2006, 2013, 2003, 2055, 1927, 4031}


def _code(exc: BaseException) -> int | None:
    orig = getattr(exc, "orig", None)
    args = getattr(orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


class MySQLDialect(Dialect):
    name = "mysql"

    def estimated_rows(self, conn: Connection, table: Table) -> int | None:
        # InnoDB's own estimate (what SHOW TABLE STATUS says), kept up to date as rows change.
        found = conn.execute(
            text(
                "SELECT table_rows FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = :n"
            ),
            {"n": table.name},
        ).scalar()
        return None if found is None else int(found)

    def bucket_index(self, start: Any, end: Any, seconds: int) -> ColumnElement[int]:
        return func.floor(func.timestampdiff(literal_column("SECOND"), start, end) / seconds)

    supports_skip_locked = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._returning = False
        self._consecutive_ids = False
        self.packet_bytes: int | None = None
        self._packets: dict[tuple[str, tuple[str, ...], bool], EnqueuePacket] = {}

    def engine_options(self) -> dict[str, Any]:
        opts = super().engine_options()
        # READ COMMITTED: gap locks under REPEATABLE READ deadlock concurrent claims.
        opts["isolation_level"] = "READ COMMITTED"
        opts["pool_recycle"] = 3600
        # The pool's reset sent a ROLLBACK after every COMMIT (PyMySQL does not know the
        # transaction is over): one wasted round trip per transaction. on_engine's reset
        # hook rolls back every connection but one that our COMMIT was the last thing on.
        opts["pool_reset_on_return"] = None
        # Several statements in one round trip (mysql_packets.py): a one-job enqueue is one.
        opts["connect_args"] = {"client_flag": client_flags()}
        return opts

    def on_engine(self, engine: Engine) -> None:
        @event.listens_for(engine, "reset")
        def _reset(dbapi_conn: Any, record: Any, _state: Any) -> None:
            # Roll back unless the last thing on this connection was our COMMIT. The server
            # status cannot tell: a SELECT with autocommit off leaves no IN_TRANS flag on
            # MariaDB, yet holds metadata locks until the transaction ends.
            if not record.info.pop(_COMMITTED, False):
                dbapi_conn.rollback()

    def after_commit(self, conn: Connection) -> None:
        conn.info[_COMMITTED] = True

    # A one-job enqueue is one packet that commits itself (enqueue_in_one_statement).
    jobs_per_enqueue_statement = 1

    @contextmanager
    def alone(self, conn: Connection) -> Iterator[Connection]:
        # Not autocommit, which PyMySQL switches with a round trip each way: a statement
        # run alone here is a packet that ends in its own COMMIT.
        yield conn

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
        # The packet commits: only for a call run alone (Dialect.alone), never inside a
        # transaction of the caller's, which it would commit half-done.
        if len(rows) != 1 or conn.in_transaction():
            return None
        (row,) = rows
        later = row[columns.index("scheduled_at")] > now
        key = (jobs.name, tuple(columns), later)
        packet = self._packets.get(key)
        if packet is None:
            packet = self._packets[key] = EnqueuePacket(conn, jobs, scheduled if later else ready, columns, later)
        return [(packet.run(conn, row, now), later)]

    def check_server(self, conn: Connection) -> None:
        version = str(conn.exec_driver_sql("SELECT VERSION()").scalar())
        numbers = tuple(int(x) for x in version.split("-")[0].split(".")[:2] if x.isdigit())
        mariadb = "mariadb" in version.lower()
        minimum = (10, 6) if mariadb else (8, 0)
        if numbers < minimum:
            kind = "MariaDB" if mariadb else "MySQL"
            raise ConfigError(
                f"{kind} {version} lacks FOR UPDATE SKIP LOCKED; Quebec needs {kind} "
                f"{'.'.join(map(str, minimum))} or newer"
            )
        # MariaDB has DELETE ... RETURNING (10.0+); MySQL has no RETURNING at all.
        self._returning = mariadb
        mode = conn.exec_driver_sql("SELECT @@innodb_autoinc_lock_mode").scalar()
        self._consecutive_ids = mode is not None and int(mode) in (0, 1)

    def read_limits(self, conn: Connection, jobs: Table) -> None:
        # Two limits: the column's type (TEXT holds 65,535 bytes — what the wheel creates —
        # MEDIUMTEXT 16 MB…), read from the table itself so any database is handled; and
        # max_allowed_packet, which bounds the whole INSERT, where escaping can double a value.
        packet = int(conn.exec_driver_sql("SELECT @@max_allowed_packet").scalar_one())
        self.packet_bytes = packet
        limits = [((packet - _PACKET_MARGIN) // 2, f"MySQL's max_allowed_packet of {packet:,} bytes once escaped")]
        column = conn.execute(
            text(
                "SELECT DATA_TYPE, CHARACTER_OCTET_LENGTH FROM information_schema.COLUMNS "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t AND COLUMN_NAME = 'arguments'"
            ),
            {"t": jobs.name},
        ).first()
        if column is not None and column[1] is not None:
            limits.append((int(column[1]), f"the {jobs.name}.arguments column ({str(column[0]).upper()})"))
        self.arguments_limit = min(limits)

    def delete_by_id(self, conn: Connection, table: Table, ids: Sequence[int]) -> None:
        # Not `id IN (…)`: for a list that is a good part of a small table (50 of 300 ready
        # rows) InnoDB scans the whole table, and waits for every row another claim has
        # locked (lock wait timeouts, and deadlocks with two workers). Joined to the list
        # as a JSON_TABLE, each row is one primary-key lookup (eq_ref).
        sql, ids_value = self._delete_by_id(conn, table, ids)
        conn.exec_driver_sql(sql, (ids_value,))

    def _delete_by_id(self, conn: Connection, table: Table, ids: Sequence[int]) -> tuple[str, str]:
        """delete_by_id's statement and its one parameter, the id list as JSON."""
        name = conn.dialect.identifier_preparer.quote(table.name)
        joined = "JSON_TABLE(%s, '$[*]' COLUMNS (id BIGINT PATH '$'))"
        return f"DELETE t FROM {name} t JOIN {joined} AS ids ON t.id = ids.id", json.dumps([int(i) for i in ids])

    def delete_by_id_and_insert(
        self,
        conn: Connection,
        table: Table,
        ids: Sequence[int],
        into: Table,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
    ) -> None:
        # One packet, one round trip (mysql_packets.py); the transaction stays open.
        if not rows:
            self.delete_by_id(conn, table, ids)
            return
        delete_sql, ids_value = self._delete_by_id(conn, table, ids)
        sql = f"{delete_sql}; {self.insert_sql(conn, into, columns, len(rows))}"
        run_packet(conn, sql, [ids_value, *(v for row in rows for v in row)])

    def in_index_order(self, stmt: Select[Any], table: Table, index: str) -> Select[Any]:
        # InnoDB chose the covering (queue_name, priority, job_id) index and a filesort for a
        # claim of every queue: it read and locked every ready row (5,000 locked for a
        # claim of 50), and concurrent claims deadlocked. Along (priority, job_id) it stops
        # after the rows it returns (100 locks: index and clustered record).
        return stmt.with_hint(table, f"FORCE INDEX ({index})")

    def delete_returning(
        self, conn: Connection, table: Table, where: ColumnElement[bool], params: Mapping[str, Any] | None = None
    ) -> list[int]:
        if self._returning:
            return super().delete_returning(conn, table, where, params)
        # No RETURNING: lock the rows so nobody takes them between SELECT and DELETE.
        ids = self.ids_for_update(conn, table, where, params)
        if ids:
            conn.execute(delete(table).where(table.c.job_id.in_(ids)))
        return ids

    def insert_returning_ids(
        self, conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, key: str
    ) -> list[int]:
        if self._returning:  # MariaDB: INSERT … RETURNING, as the portable path
            return super().insert_returning_ids(conn, table, columns, rows, key=key)
        # MySQL: one multi-row INSERT per chunk; LAST_INSERT_ID() is the first id of the
        # statement, and with innodb_autoinc_lock_mode 0 or 1 a multi-row INSERT gets
        # consecutive ids. Under mode 2 (interleaved) read them back by the unique key.
        ids: list[int] = []
        k = list(columns).index(key)
        for chunk in self.chunks(columns, rows):
            conn.exec_driver_sql(
                self.insert_sql(conn, table, columns, len(chunk)), tuple(v for row in chunk for v in row)
            )
            first = int(conn.exec_driver_sql("SELECT LAST_INSERT_ID()").scalar_one())
            if self._consecutive_ids:
                ids.extend(range(first, first + len(chunk)))
                continue
            keys = [row[k] for row in chunk]
            found = dict(
                conn.execute(select(table.c[key], table.c.id).where(table.c.id >= first, table.c[key].in_(keys))).all()
            )
            ids.extend(found[x] for x in keys)
        return ids

    def chunks(self, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Iterator[Sequence[Sequence[Any]]]:
        # A statement must fit in max_allowed_packet: 1,000 jobs of 20 KB each do not fit
        # MariaDB's default 16 MB. Sized by the arguments column (the others are short
        # names), counting 8 bytes a character: 4 of UTF-8, doubled by escaping.
        budget = (self.packet_bytes or 1 << 24) - _PACKET_MARGIN
        k = list(columns).index("arguments") if "arguments" in columns else None
        for chunk in super().chunks(columns, rows):
            sizes = [_ROW_BYTES + 8 * len(row[k] or "") for row in chunk] if k is not None else []
            if sum(sizes) <= budget:
                yield chunk
                continue
            start, used = 0, 0
            for i, size in enumerate(sizes):
                if used + size > budget and i > start:
                    yield chunk[start:i]
                    start, used = i, 0
                used += size
            yield chunk[start:]

    def insert_if_absent(self, conn: Connection, table: Table, values: dict[str, Any]) -> bool:  # type: ignore[override]
        # Only the statement rolls back on 1062 in MySQL, so catching it is safe;
        # INSERT IGNORE would also swallow unrelated errors.
        try:
            with conn.begin_nested():
                conn.execute(insert(table).values(**values))
        except IntegrityError as exc:
            if self.is_duplicate_key(exc):
                return False
            raise
        return True

    def is_transient(self, exc: BaseException) -> bool:
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return True
        return _code(exc) in _TRANSIENT_CODES

    def is_missing_table(self, exc: BaseException) -> bool:
        return _code(exc) == 1146

    def is_read_only(self, exc: BaseException) -> bool:
        return _code(exc) in (1290, 1792)  # --read-only server; READ ONLY transaction

    def is_duplicate_key(self, exc: BaseException) -> bool:
        return _code(exc) == 1062
