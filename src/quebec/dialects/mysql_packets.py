"""MySQL: several statements sent as one packet, one round trip.

A one-job enqueue was three round trips (INSERT the job, INSERT its execution row,
COMMIT), and a claim's delete and insert two. The connections are opened with
CLIENT.MULTI_STATEMENTS, so such statements go to the server together; it runs them in
order and stops at the first error, which PyMySQL raises when its result is read.

Values are still bound by PyMySQL's own escaping, never pasted: the text of every packet
is built from table and column names the schema validated.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.exc import DBAPIError


def client_flags() -> int:
    """The connections' CLIENT flags: MULTI_STATEMENTS, and FOUND_ROWS, which SQLAlchemy
    sets itself (rowcount counts the rows matched, not only those changed) but connect_args
    replace."""
    from pymysql.constants import CLIENT

    return int(CLIENT.FOUND_ROWS | CLIENT.MULTI_STATEMENTS)


@contextmanager
def driver_cursor(conn: Connection, sql: str) -> Iterator[Any]:
    """A PyMySQL cursor on `conn`'s connection, for work done past SQLAlchemy; a PyMySQL
    error raised in the block comes out as SQLAlchemy would raise it (transact() retries
    by it), and a connection it broke is invalidated, as SQLAlchemy would."""
    import pymysql

    raw = conn.connection.driver_connection
    cursor = raw.cursor()  # type: ignore[union-attr]
    try:
        yield cursor
    except pymysql.Error as exc:
        lost = not raw.open  # type: ignore[union-attr]
        if lost:
            conn.invalidate(exc)
        raise DBAPIError.instance(sql, None, exc, pymysql.Error, connection_invalidated=lost) from exc
    finally:
        cursor.close()


def run_packet(conn: Connection, sql: str, params: Sequence[Any]) -> int:
    """Send the statements of `sql` in one round trip; read every result, so that an error
    in any of them is raised here. Returns the id the first statement inserted."""
    with driver_cursor(conn, sql) as cursor:
        cursor.execute(sql, tuple(params))
        inserted = int(cursor.lastrowid or 0)
        while cursor.nextset():
            pass
        return inserted


class EnqueuePacket:
    """INSERT one job, INSERT its ready or scheduled row (its id from LAST_INSERT_ID()),
    COMMIT: the whole one-job enqueue, atomic, in one packet; built once per table and
    column list, so an enqueue only picks its execution row's values from the job's row."""

    def __init__(
        self, conn: Connection, jobs: Table, execution: Table, columns: Sequence[str], scheduled: bool
    ) -> None:
        quote = conn.dialect.identifier_preparer.quote
        copied = ["queue_name", "priority", *(["scheduled_at"] if scheduled else [])]
        self._copied = [list(columns).index(c) for c in copied]  # taken from the job's row
        execution_columns = ["job_id", *copied, "created_at"]
        self.sql = (
            f"INSERT INTO {quote(jobs.name)} ({', '.join(quote(c) for c in columns)}) "
            f"VALUES ({', '.join(['%s'] * len(columns))}); "
            f"INSERT INTO {quote(execution.name)} ({', '.join(quote(c) for c in execution_columns)}) "
            f"VALUES (LAST_INSERT_ID(), {', '.join(['%s'] * (len(execution_columns) - 1))}); "
            "COMMIT"
        )

    def run(self, conn: Connection, row: Sequence[Any], now: Any) -> int:
        """Send it for the job `row` (its columns in order); the new job's id."""
        return run_packet(conn, self.sql, [*row, *(row[i] for i in self._copied), now])
