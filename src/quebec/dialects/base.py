"""Dialect: what differs per database, behind a small set of hooks.

The portable default of every hook lives here; a subclass overrides only what its
database does differently and says why. Nothing outside quebec/dialects asks
which database it is talking to: it asks a capability flag or calls a hook.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, Select, Table, delete, insert, select
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import ColumnElement


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

    def __init__(self, url: URL, *, use_skip_locked: bool = True) -> None:
        self.url = url
        self.use_skip_locked = use_skip_locked

    # -- engine ---------------------------------------------------------------------------
    def engine_options(self) -> dict[str, Any]:
        return {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 20}

    def on_engine(self, engine: Engine) -> None:
        """Install event hooks (connect, begin) on a new engine."""

    def check_server(self, conn: Connection) -> None:
        """Refuse a server that lacks what we need, in one sentence."""

    # -- transactions ---------------------------------------------------------------------
    def begin_write(self, conn: Connection) -> None:
        conn.begin()

    def begin_read(self, conn: Connection) -> None:
        conn.begin()

    # -- statements -----------------------------------------------------------------------
    def lock_skip_locked(self, stmt: Select[Any]) -> Select[Any]:
        if self.supports_skip_locked and self.use_skip_locked:
            return stmt.with_for_update(skip_locked=True)
        return stmt

    def delete_returning(self, conn: Connection, table: Table, where: ColumnElement[bool]) -> list[int]:
        """Delete execution rows matching `where`; return their job_ids."""
        rows = conn.execute(delete(table).where(where).returning(table.c.job_id))
        return [r[0] for r in rows]

    def insert_returning_ids(self, conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]],
                             *, key: str) -> list[int]:
        """Insert many rows; return their new ids in input order. `key` is a unique column."""
        result = conn.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), rows)
        return [r[0] for r in result]

    def insert_if_absent(self, conn: Connection, table: Table, values: Mapping[str, Any]) -> bool:
        """Insert unless a unique key already exists; True when inserted."""
        raise NotImplementedError

    def notify(self, conn: Connection, channel: str, payload: str) -> None:
        """Wake listeners in other processes after this transaction commits (if supported)."""

    def listener(self, channel: str, on_message: Callable[[str], None]) -> Any:
        raise NotImplementedError(f"{self.name} has no LISTEN/NOTIFY")

    # -- errors ---------------------------------------------------------------------------
    def is_transient(self, exc: BaseException) -> bool:
        """True when rerunning the whole transaction may succeed."""
        return isinstance(exc, DBAPIError) and exc.connection_invalidated

    def is_duplicate_key(self, exc: BaseException) -> bool:
        return False

    def is_missing_table(self, exc: BaseException) -> bool:
        return False

    def ids_for_update(self, conn: Connection, table: Table, where: ColumnElement[bool]) -> list[int]:
        stmt = select(table.c.job_id).where(where).with_for_update()
        return list(conn.scalars(stmt))
