"""MySQL 8 / MariaDB 10.6+: SKIP LOCKED, no RETURNING on MySQL, 1062/1213/1205 errors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, Table, delete, event, insert, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from quebec.dialects.base import Dialect
from quebec.errors import ConfigError

_CHUNK = 1000
_COMMITTED = "quebec_committed"  # connection info: nothing has run since our COMMIT
_TRANSIENT_CODES = {1213, 1205, 2006, 2013, 2003, 2055, 1927, 4031}


def _code(exc: BaseException) -> int | None:
    orig = getattr(exc, "orig", None)
    args = getattr(orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


class MySQLDialect(Dialect):
    name = "mysql"
    supports_skip_locked = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._returning = False
        self._consecutive_ids = False

    def engine_options(self) -> dict[str, Any]:
        opts = super().engine_options()
        # READ COMMITTED: gap locks under REPEATABLE READ deadlock concurrent claims.
        opts["isolation_level"] = "READ COMMITTED"
        opts["pool_recycle"] = 3600
        # The pool's reset sent a ROLLBACK after every COMMIT (PyMySQL does not know the
        # transaction is over): one wasted round trip per transaction. on_engine's reset
        # hook rolls back every connection but one that our COMMIT was the last thing on.
        opts["pool_reset_on_return"] = None
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

    def delete_returning(self, conn: Connection, table: Table, where: ColumnElement[bool]) -> list[int]:
        if self._returning:
            return super().delete_returning(conn, table, where)
        # No RETURNING: lock the rows so nobody takes them between SELECT and DELETE.
        ids = self.ids_for_update(conn, table, where)
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
        for start in range(0, len(rows), self.chunk_rows):
            chunk = rows[start : start + self.chunk_rows]
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

    def is_duplicate_key(self, exc: BaseException) -> bool:
        return _code(exc) == 1062
