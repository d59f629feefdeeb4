"""create_tables() and a small versioned upgrade path.

Version 1 is the wheel's layout. A database the Rust Quebec created has no
`<prefix>_schema_migrations` table; it is recognised as version 1 and adopted, so
pointing our worker at it needs no migration. Later versions append a function
to `_UPGRADES`; each runs in its own transaction and records itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, insert, inspect, select
from sqlalchemy import func as sa_func

from quebec.clock import utcnow
from quebec.schema.tables import Tables

SCHEMA_VERSION = 3


def _add_job_results(conn: Connection, tables: Tables) -> None:
    """Version 2: the job_results table (results, and cancelled/discarded told from finished)."""
    tables.job_results.create(conn, checkfirst=True)


def _add_flow_tables(conn: Connection, tables: Tables) -> None:
    """Version 3: our tables for rate limits and unique jobs, beside the wheel's."""
    tables.rate_limits.create(conn, checkfirst=True)
    tables.unique_jobs.create(conn, checkfirst=True)


# version -> function(conn, tables) bringing version-1 → version.
_UPGRADES: dict[int, Callable[[Connection, Tables], None]] = {2: _add_job_results, 3: _add_flow_tables}


def current_version(conn: Connection, tables: Tables) -> int:
    """0 = no Quebec tables at all; otherwise the recorded (or adopted) version."""
    names = set(inspect(conn).get_table_names())
    if tables.jobs.name not in names:
        return 0
    if tables.schema_migrations.name not in names:
        return 1
    version = conn.execute(select(sa_func.max(tables.schema_migrations.c.version))).scalar()
    return int(version or 1)


def create_tables(engine: Engine, tables: Tables, begin_write: Callable[[Connection], None]) -> bool:
    """Create every table and index that is missing, then upgrade. Idempotent.

    `begin_write(conn)` opens each transaction holding the write lock from its start
    (Dialect.begin_write; SQLite: BEGIN IMMEDIATE). Two processes creating the tables of a
    new SQLite file at once then take turns: the second waits (busy_timeout) and finds them
    made. A deferred transaction reads first (create_all's checkfirst), and SQLite refuses
    that transaction's upgrade to a writer at once, with "database is locked", without
    waiting for the other process, whenever the other holds the write lock.
    """
    with _writing(engine, begin_write) as conn:
        tables.metadata.create_all(conn, checkfirst=True)
        recorded = conn.execute(select(sa_func.max(tables.schema_migrations.c.version))).scalar()
        if recorded is None:
            conn.execute(insert(tables.schema_migrations).values(version=1, applied_at=utcnow()))
    upgrade(engine, tables, begin_write)
    return True


def upgrade(engine: Engine, tables: Tables, begin_write: Callable[[Connection], None]) -> int:
    """Apply every version above the database's; returns the version reached. Each step
    reads the version again under the write lock, so a step another process applied
    meanwhile is skipped, not recorded twice."""
    with engine.connect() as conn:
        version = current_version(conn, tables)
    for target in sorted(v for v in _UPGRADES if v > version):
        with _writing(engine, begin_write) as conn:
            if current_version(conn, tables) < target:
                _UPGRADES[target](conn, tables)
                conn.execute(insert(tables.schema_migrations).values(version=target, applied_at=utcnow()))
        version = target
    return version


@contextmanager
def _writing(engine: Engine, begin_write: Callable[[Connection], None]) -> Iterator[Connection]:
    """A connection in a write transaction begun by `begin_write`, committed if the block returns."""
    with engine.connect() as conn:
        begin_write(conn)
        yield conn
        conn.commit()
