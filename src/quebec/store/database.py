"""Database: engine, dialect, tables and clock; `transact()` runs a store function in one transaction."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, create_engine, inspect, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from quebec.clock import Clock, SystemClock
from quebec.config.settings import SSL_OPTIONS, Settings
from quebec.dialects import Dialect, for_url, redact
from quebec.errors import ConfigError, DatabaseUnavailable, MissingTables, QuebecError, StoreError
from quebec.events import JobEvents
from quebec.identifiers import table_prefix
from quebec.schema import Tables, build_tables
from quebec.schema import create_tables as _create_tables
from quebec.store.pulse import Pulse
from quebec.store.statements import Statements
from quebec.types import NO_FLOW_RULES, FlowRules

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
    # The claim and finish statements, built once per Database (store/statements.py).
    statements: Statements
    # The NOTIFY channel enqueues announce ready queues on (settings.name): per Database,
    # so two Quebec instances in one process each keep their own.
    channel: str = "quebec"
    # preserve_finished_jobs: a job that ends finished keeps its row (False: the row is deleted).
    preserve_finished: bool = True
    # What the job classes of this process say about concurrency (limits, TTLs), for routing.
    flow: FlowRules = NO_FLOW_RULES
    # The job_results table exists (schema version 2): results and endings are recorded.
    keeps_results: bool = False
    # Beaten once this transaction commits, if it ended jobs (results.announce_done): wakes
    # waiters in this process.
    ended: Pulse | None = None
    # Set by store functions: something to do once the transaction has committed.
    after_commit: list[Callable[[], None]] = field(default_factory=list)


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
        channel: str = "quebec",
        preserve_finished: bool = True,
        flow: FlowRules = NO_FLOW_RULES,
    ) -> None:
        sa_url, dialect = for_url(url, use_skip_locked=use_skip_locked)
        self.url = url
        self.display_url = redact(url)
        self.dialect = dialect
        self.tables = build_tables(table_prefix(prefix))  # the one normalisation, whoever calls
        self.statements = Statements(self.tables, dialect)
        self.clock: Clock = clock or SystemClock()
        self.channel = channel
        self.preserve_finished = preserve_finished
        self.flow = flow
        # Whether the job_results table exists: tables the wheel created have none until
        # create_tables(). None = not known yet (no tables at all when we connected): the
        # next transaction looks, until someone has created them.
        self.keeps_results: bool | None = None
        self.ended = Pulse()  # beaten after jobs end in this process (store.results.ended)
        self.events = JobEvents()  # in-process subscribers to job events (quebec.events)
        # How long transact() keeps rerunning a transaction through transient errors
        # (SQLite's busy lock, a deadlock, a dropped connection) before giving up.
        self.retry_for = retry_for
        options = dialect.engine_options()
        if pool_size is not None and "pool_size" in options:
            options["pool_size"] = pool_size
        ssl_args = dialect.ssl_connect_args({k: v for k, v in (ssl or {}).items() if v is not None})
        if ssl_args:
            options.setdefault("connect_args", {}).update(ssl_args)
        # Every backend waits at most this long to connect (SQLite: for the write lock), and
        # connect() tries three times: no loop here waits unbounded.
        self.connect_timeout = dialect.default_connect_timeout if connect_timeout is None else connect_timeout
        timeouts = dialect.timeout_args(self.connect_timeout)
        if timeouts:
            options.setdefault("connect_args", {}).update(timeouts)
        self.engine: Engine = create_engine(sa_url, **options)
        dialect.on_engine(self.engine)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, clock: Clock | None = None, flow: FlowRules = NO_FLOW_RULES
    ) -> Database:
        """The Database that settings describe: what Quebec() and the CLI both open, so both
        see the same URL, tables, pool, timeouts, ssl and NOTIFY channel."""
        if not settings.database_url:
            raise ConfigError(
                "no database URL; set DATABASE_URL (or QUEBEC_DATABASE_URL), give queue.yml a database: url:, "
                "or pass it, e.g. Quebec('sqlite:///app.db?mode=rwc')"
            )
        return cls(
            settings.database_url,
            prefix=settings.table_name_prefix,
            clock=clock,
            use_skip_locked=settings.use_skip_locked,
            pool_size=settings.db_max_connections,
            connect_timeout=settings.db_connect_timeout,
            ssl={k: v for k in SSL_OPTIONS if (v := getattr(settings, k)) is not None},
            channel=settings.name,
            preserve_finished=settings.preserve_finished_jobs,
            flow=flow,
        )

    # -- lifecycle ------------------------------------------------------------------------
    def connect(self, attempts: int = 3) -> None:
        """Open one connection eagerly, so a wrong URL fails at construction, in one sentence."""
        last: Exception | None = None
        for attempt in range(attempts):
            try:
                with self.engine.connect() as conn:
                    self.dialect.check_server(conn)
                    conn.execute(text("SELECT 1"))
                    self.dialect.read_limits(conn, self.tables.jobs)
                    self.keeps_results = self._has_results_table(conn)
                if self.dialect.embedded and not self.dialect.read_only:
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
        # Two processes may create the same tables at once. On SQLite the second waits for
        # the first's write lock (migrate.create_tables begins with it); on PostgreSQL and
        # MySQL the loser's CREATE can fail with "already exists", and a second pass then
        # finds everything in place. A transient error (a lock held past busy_timeout, a
        # deadlock) is retried like transact() does, for retry_for seconds.
        deadline = time.monotonic() + self.retry_for
        retried = False
        while True:
            try:
                created = _create_tables(self.engine, self.tables, self.dialect.begin_write)
                with self.engine.connect() as conn:  # the new table's column type may set a limit
                    self.dialect.read_limits(conn, self.tables.jobs)
                self.keeps_results = True
                return created
            except SQLAlchemyError as exc:
                transient = self.dialect.is_transient(exc) and time.monotonic() < deadline
                if not transient and retried:
                    raise self._gave_up(self.create_tables, exc) from None
                retried = retried or not transient
                log.debug("create_tables.retry error=%s", exc)
                time.sleep(0.2)

    def _has_results_table(self, conn: Connection) -> bool | None:
        has = bool(inspect(conn).has_table(self.tables.job_results.name))
        if has:
            return True
        if not inspect(conn).has_table(self.tables.jobs.name):
            return None  # nothing created yet: ask again later
        log.warning(
            "store.no_results_table table=%s: these tables predate it (the Rust wheel made them?), so job "
            "results are not kept and cancelled or discarded jobs read as finished; call qc.create_tables() "
            "(or run with create_tables=True) to add it",
            self.tables.job_results.name,
        )
        return False

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
        if self.keeps_results is None:
            self.keeps_results = self._has_results_table(conn)
        return Tx(
            conn=conn,
            tables=self.tables,
            dialect=self.dialect,
            now=self.clock.now(),
            statements=self.statements,
            channel=self.channel,
            preserve_finished=self.preserve_finished,
            flow=self.flow,
            keeps_results=bool(self.keeps_results),
            ended=self.ended,
        )

    def _mode(self, conn: Connection, alone: bool) -> AbstractContextManager[Connection]:
        # One statement is its own transaction: no BEGIN and COMMIT round trips.
        return self.dialect.alone(conn) if alone else nullcontext(conn)

    def _run(self, fn: Callable[..., T], write: bool, *args: Any, **kwargs: Any) -> T:
        deadline = time.monotonic() + self.retry_for
        attempt = 0
        check = getattr(fn, "one_statement_when", None)
        autocommit = write and check is not None and check(self.dialect, args, kwargs)
        while True:
            attempt += 1
            committing = False
            try:
                with self.engine.connect() as pooled, self._mode(pooled, autocommit) as conn:
                    if autocommit:
                        committing = True
                    elif write:
                        self.dialect.begin_write(conn)
                    else:
                        self.dialect.begin_read(conn)
                    tx = self._tx(conn)
                    result = fn(tx, *args, **kwargs)
                    if not autocommit or conn.in_transaction():
                        # (Run alone, a call that still began a transaction, as MySQL's
                        # enqueue does when it cannot send its self-committing packet,
                        # commits it here; in autocommit mode that costs nothing.)
                        committing = True
                        conn.commit()
                    self.dialect.after_commit(conn)
                    for done in tx.after_commit:
                        done()
                    return result
            except SQLAlchemyError as exc:
                if autocommit and not (isinstance(exc, DBAPIError) and exc.connection_invalidated):
                    committing = False  # the statement failed whole (deadlock, serialization): rerun it
                if committing and not self.dialect.single_writer:
                    raise _failure(
                        DatabaseUnavailable(
                            f"the connection to {self.display_url} was lost while committing "
                            f"{_name(fn)}; its outcome is unknown"
                        ),
                        exc,
                    ) from None
                if self.dialect.is_missing_table(exc):
                    raise MissingTables(
                        f"the Quebec tables with prefix {self.tables.prefix!r} do not exist in {self.display_url}; "
                        f"call qc.create_tables(), run with create_tables=True, or run `python -m quebec` "
                        f"(it creates them unless QUEBEC_CREATE_TABLES=false)"
                    ) from None
                if not self.dialect.is_transient(exc) or time.monotonic() > deadline:
                    raise self._gave_up(fn, exc) from None
                delay = min(1.0, 0.005 * 2 ** min(attempt, 8)) * (0.5 + random.random())
                log.debug("transact.retry fn=%s attempt=%d error=%s", _name(fn), attempt, exc)
                time.sleep(delay)
            except OverflowError as exc:  # the driver could not bind a Python int (SQLite: > 64 bits)
                raise _failure(
                    StoreError(f"{_name(fn)} on {self.display_url} was given a number too large to store: {exc}"), exc
                ) from None

    def _gave_up(self, fn: Callable[..., Any], exc: SQLAlchemyError) -> QuebecError:
        """The sentence for an error transact() does not rerun (or no longer): the driver's own
        first line, never the SQL, which goes to the DEBUG log."""
        reason = _reason(exc)
        if self.dialect.is_transient(exc):
            error: QuebecError = DatabaseUnavailable(
                f"{_name(fn)} on {self.display_url} kept failing for {self.retry_for:.0f}s: {reason}"
            )
        elif isinstance(exc, PoolTimeout):
            error = DatabaseUnavailable(
                f"{_name(fn)} waited for a free connection to {self.display_url} and none came: {reason}; "
                f"raise db_max_connections or run fewer threads"
            )
        elif self.dialect.is_read_only(exc):
            error = StoreError(
                f"{_name(fn)} cannot write to {self.display_url}, which is read-only ({reason}); "
                f"open it read-write to enqueue or run jobs"
            )
        else:
            error = StoreError(
                f"{_name(fn)} on {self.display_url} failed: {reason}; the statement is in the quebec.store DEBUG log"
            )
        return _failure(error, exc)


def _name(fn: Callable[..., Any]) -> str:
    return str(getattr(fn, "__name__", fn))


def _reason(exc: BaseException) -> str:
    """The driver's message, first line only: psycopg's next lines quote the SQL."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _failure(error: QuebecError, exc: BaseException) -> QuebecError:
    """`error`, with the driver's exception kept as .original and logged whole at DEBUG
    (raised `from None`, so a traceback shows the sentence, not the SQL)."""
    log.debug("store.error %s", exc, exc_info=exc)
    error.original = exc  # type: ignore[attr-defined]
    return error


def one_statement_when(check: Callable[[Dialect, tuple[Any, ...], dict[str, Any]], bool]) -> Callable[[F], F]:
    """Mark a store function that issues exactly one statement when `check(dialect, args, kwargs)`
    holds for the arguments after tx: transact() then runs it in autocommit mode, saving
    BEGIN and COMMIT."""

    def mark(fn: F) -> F:
        fn.one_statement_when = check  # type: ignore[attr-defined]
        return fn

    return mark
