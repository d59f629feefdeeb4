"""Database: engine, dialect, tables and clock; `transact()` runs a store function in one transaction."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from quebec.clock import Clock, SystemClock
from quebec.dialects import Dialect, for_url, redact
from quebec.errors import DatabaseUnavailable, MissingTables
from quebec.schema import Tables, build_tables
from quebec.schema import create_tables as _create_tables

log = logging.getLogger("quebec.store")
P = ParamSpec("P")
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class Tx:
    """What a store function gets: the connection of its transaction, and `now` read once."""

    conn: Connection
    tables: Tables
    dialect: Dialect
    now: datetime
    # preserve_finished_jobs: a job that ends finished keeps its row (False: the row is deleted).
    preserve_finished: bool = True


class Database:
    def __init__(
        self,
        url: str,
        *,
        prefix: str,
        clock: Clock | None = None,
        use_skip_locked: bool = True,
        pool_size: int | None = None,
        connect_timeout: float | None = None,
        retry_for: float = 30.0,
        ssl: Mapping[str, str] | None = None,
        preserve_finished: bool = True,
    ) -> None:
        sa_url, dialect = for_url(url, use_skip_locked=use_skip_locked)
        self.url = url
        self.display_url = redact(url)
        self.dialect = dialect
        self.tables = build_tables(prefix)
        self.clock: Clock = clock or SystemClock()
        self.preserve_finished = preserve_finished
        # How long transact() keeps rerunning a transaction through transient errors
        # (SQLite's busy lock, a deadlock, a dropped connection) before giving up.
        self.retry_for = retry_for
        options = dialect.engine_options()
        if pool_size is not None and "pool_size" in options:
            options["pool_size"] = pool_size
        ssl_args = dialect.ssl_connect_args({k: v for k, v in (ssl or {}).items() if v is not None})
        if ssl_args:
            options.setdefault("connect_args", {}).update(ssl_args)
        if connect_timeout is not None and not dialect.embedded:
            options.setdefault("connect_args", {})["connect_timeout"] = int(max(1, connect_timeout))
        self.engine: Engine = create_engine(sa_url, **options)
        dialect.on_engine(self.engine)

    # -- lifecycle ------------------------------------------------------------------------
    def connect(self, attempts: int = 3) -> None:
        """Open one connection eagerly, so a wrong URL fails at construction, in one sentence."""
        last: Exception | None = None
        for attempt in range(attempts):
            try:
                with self.engine.connect() as conn:
                    self.dialect.check_server(conn)
                    conn.execute(text("SELECT 1"))
                if self.dialect.embedded:
                    self.create_tables()
                return
            except DBAPIError as exc:
                last = exc
                time.sleep(0.2 * (attempt + 1))
        reason = str(getattr(last, "orig", last)).strip().splitlines()[0] if last else "unknown error"
        raise DatabaseUnavailable(
            f"cannot connect to {self.display_url}: {reason}; check that the server is running and the URL "
            f"(host, port, user, database) is right"
        )

    def create_tables(self) -> bool:
        # Two processes may create the same tables at once; the loser's CREATE fails
        # with "already exists", and a second pass then finds everything in place.
        try:
            return _create_tables(self.engine, self.tables)
        except SQLAlchemyError:
            time.sleep(0.2)
            return _create_tables(self.engine, self.tables)

    def dispose(self, close: bool = True) -> None:
        self.engine.dispose(close=close)

    # -- transactions ---------------------------------------------------------------------
    def transact(self, fn: Callable[Concatenate[Tx, P], T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn(tx, ...)` in one write transaction; rerun it whole on a transient error.

        Only errors raised before COMMIT was sent are rerun. A connection lost during
        COMMIT leaves the outcome unknown: that is raised as DatabaseUnavailable.
        """
        return self._run(fn, True, *args, **kwargs)

    def read(self, fn: Callable[Concatenate[Tx, P], T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn(tx, ...)` in a read transaction (SQLite: deferred, so it never takes the write lock)."""
        return self._run(fn, False, *args, **kwargs)

    def join(self, conn: Connection) -> Tx:
        """A Tx on the caller's connection: it neither begins nor commits."""
        return self._tx(conn)

    def _tx(self, conn: Connection) -> Tx:
        return Tx(conn, self.tables, self.dialect, self.clock.now(), self.preserve_finished)

    def _run(self, fn: Callable[..., T], write: bool, *args: Any, **kwargs: Any) -> T:
        deadline = time.monotonic() + self.retry_for
        attempt = 0
        check = getattr(fn, "one_statement_when", None)
        autocommit = write and check is not None and check(self.dialect, args, kwargs)
        while True:
            attempt += 1
            committing = False
            try:
                with self.engine.connect() as conn:
                    if autocommit:
                        # One statement is its own transaction: no BEGIN and COMMIT round trips.
                        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                        committing = True
                    elif write:
                        self.dialect.begin_write(conn)
                    else:
                        self.dialect.begin_read(conn)
                    tx = self._tx(conn)
                    result = fn(tx, *args, **kwargs)
                    if not autocommit:
                        committing = True
                        conn.commit()
                        self.dialect.after_commit(conn)
                    return result
            except SQLAlchemyError as exc:
                if autocommit and not (isinstance(exc, DBAPIError) and exc.connection_invalidated):
                    committing = False  # the statement failed whole (deadlock, serialization): rerun it
                if committing and not self.dialect.single_writer:
                    raise DatabaseUnavailable(
                        f"the connection to {self.display_url} was lost while committing "
                        f"{getattr(fn, '__name__', fn)}; its outcome is unknown"
                    ) from exc
                if self.dialect.is_missing_table(exc):
                    raise MissingTables(
                        f"the Quebec tables with prefix {self.tables.prefix!r} do not exist in {self.display_url}; "
                        f"call qc.create_tables(), run with create_tables=True, or run `python -m quebec` "
                        f"(it creates them unless QUEBEC_CREATE_TABLES=false)"
                    ) from None
                if not self.dialect.is_transient(exc) or time.monotonic() > deadline:
                    if self.dialect.is_transient(exc):
                        raise DatabaseUnavailable(
                            f"{getattr(fn, '__name__', fn)} on {self.display_url} kept failing for "
                            f"{self.retry_for:.0f}s: {str(getattr(exc, 'orig', exc)).strip()}"
                        ) from exc
                    raise
                delay = min(1.0, 0.005 * 2 ** min(attempt, 8)) * (0.5 + random.random())
                log.debug("transact.retry fn=%s attempt=%d error=%s", getattr(fn, "__name__", fn), attempt, exc)
                time.sleep(delay)


def one_statement_when(check: Callable[[Dialect, tuple[Any, ...], dict[str, Any]], bool]) -> Callable[[F], F]:
    """Mark a store function that issues exactly one statement when `check(dialect, args, kwargs)`
    holds for the arguments after tx: transact() then runs it in autocommit mode, saving
    BEGIN and COMMIT."""

    def mark(fn: F) -> F:
        fn.one_statement_when = check  # type: ignore[attr-defined]
        return fn

    return mark
