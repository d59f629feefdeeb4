"""Plain-SQL helpers for the benchmark harness (sqlite3 / psycopg / pymysql, never quebec).

Used by ``run.py`` (dropping a scenario's tables) and ``poll.py`` (counting finished jobs). Both run under
the harness interpreter, which has the drivers; ``workload.py`` must not import this module.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlsplit

_PREFIX_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def backend_of(url: str) -> str:
    scheme = url.split(":", 1)[0].lower()
    if scheme.startswith("sqlite"):
        return "sqlite"
    if scheme.startswith("postgres"):
        return "postgres"
    if scheme.startswith("mysql") or scheme.startswith("mariadb"):
        return "mysql"
    raise ValueError(f"unsupported URL scheme: {url}")


def sqlite_path(url: str) -> str:
    """``sqlite:////abs/x.db?mode=rwc`` -> ``/abs/x.db``; ``sqlite:///rel.db`` -> ``rel.db``."""
    rest = url.split(":", 1)[1]
    rest = rest.split("?", 1)[0]
    if rest.startswith("///"):
        return rest[3:]
    if rest.startswith("//"):
        return rest[2:]
    return rest


def connect(url: str) -> Any:
    """Open an autocommit DB-API connection for ``url``."""
    backend = backend_of(url)
    if backend == "sqlite":
        import sqlite3

        conn = sqlite3.connect(sqlite_path(url), timeout=5.0, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 5000")
        return conn
    if backend == "postgres":
        import psycopg

        pg_url = "postgresql" + url[url.index(":") :]
        return psycopg.connect(pg_url, autocommit=True)
    import pymysql

    parts = urlsplit(url)
    return pymysql.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=unquote(parts.username or "root"),
        password=unquote(parts.password or ""),
        database=(parts.path or "/").lstrip("/") or None,
        autocommit=True,
    )


def jobs_table(prefix: str) -> str:
    if not _PREFIX_RE.match(prefix):
        raise ValueError(f"bad table prefix {prefix!r}")
    return f"{prefix.rstrip('_')}_jobs"


def schema_name(prefix: str) -> str:
    """The PostgreSQL schema a peer's scenario runs in (its tables keep the peer's own names)."""
    jobs_table(prefix)  # validates
    return prefix.rstrip("_").lower()


# How many of the scenario's jobs are done, per implementation: one rule, used by poll.py.
DONE_SQL = {
    "quebec": "SELECT COUNT(*) FROM {jobs} WHERE finished_at IS NOT NULL",
    # PgQueuer deletes a job from its queue table when it ends (and logs it): done = expected - left.
    "pgqueuer": "SELECT {expect} - COUNT(*) FROM {schema}.pgqueuer",
    "procrastinate": "SELECT COUNT(*) FROM {schema}.procrastinate_jobs WHERE status = 'succeeded'",
}


def count_done(conn: Any, kind: str, prefix: str, expect: int) -> int:
    sql = DONE_SQL[kind].format(jobs=jobs_table(prefix), schema=schema_name(prefix), expect=int(expect))
    cur = conn.cursor()
    try:
        cur.execute(sql)
        row = cur.fetchone()
        return int(row[0])
    finally:
        cur.close()


def count_finished(conn: Any, prefix: str) -> int:
    return count_done(conn, "quebec", prefix, 0)


def drop_schema(url: str, prefix: str) -> None:
    """Drop a peer scenario's PostgreSQL schema and everything in it."""
    conn = connect(url)
    try:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema_name(prefix)}" CASCADE')
    finally:
        conn.close()


def drop_tables(url: str, prefix: str) -> list[str]:
    """Drop every table whose name starts with ``<prefix>_``; returns the dropped names.

    SQLite files are removed by the harness instead (one fresh file per scenario).
    """
    jobs_table(prefix)  # validates the prefix
    like = prefix.rstrip("_").replace("_", "\\_") + "\\_%"
    backend = backend_of(url)
    if backend == "sqlite":
        return []
    conn = connect(url)
    try:
        cur = conn.cursor()
        if backend == "postgres":
            cur.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE %s",
                (like,),
            )
            names = [r[0] for r in cur.fetchall()]
            if names:
                cur.execute("DROP TABLE IF EXISTS " + ", ".join(f'"{n}"' for n in names) + " CASCADE")
        else:
            cur.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = DATABASE() AND table_name LIKE %s",
                (like,),
            )
            names = [r[0] for r in cur.fetchall()]
            if names:
                cur.execute("SET FOREIGN_KEY_CHECKS = 0")
                cur.execute("DROP TABLE IF EXISTS " + ", ".join(f"`{n}`" for n in names))
                cur.execute("SET FOREIGN_KEY_CHECKS = 1")
        cur.close()
        return names
    finally:
        conn.close()
