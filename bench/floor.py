"""The raw-SQL floor: what each database allows through the same drivers, with no queue around it.

    python bench/floor.py --impl floor --url URL --prefix f_1a2b --scenario drain --threads 8 --jobs 10000

Runs under the harness interpreter (sqlite3, psycopg 3, PyMySQL, through ``dbutil.connect``) on a
table of its own, ``<prefix>_floor`` (id, queue_name, priority, arguments, created_at; an index on
(queue_name, priority, id)), which run.py drops afterwards. SQLite uses the pragmas ours uses (WAL,
synchronous=NORMAL). Scenarios, named as ours are so run.py can put them in the same rows:

- ``enqueue_one``: one autocommit ``INSERT`` per job;
- ``enqueue_bulk``: ``executemany`` of every job in one transaction;
- ``drain``: ``--threads`` threads, each on a connection of its own, remove the jobs in transactions
  of ``--batch`` (default 1 with one thread, 100 with more): on PostgreSQL one statement,
  ``DELETE … WHERE id IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)``; on MariaDB ``SELECT … FOR
  UPDATE SKIP LOCKED`` then ``DELETE`` in one READ COMMITTED transaction; on SQLite one
  ``DELETE … WHERE id IN (SELECT … LIMIT n)`` (the database lock serialises writers). Timed from
  the threads' start until the table is empty. A transaction that meets a deadlock or lock-wait
  timeout is rolled back and run again (MariaDB deadlocks now and then on this pattern with 8
  threads); the result counts them as ``retried_transactions``.

There is no floor for pickup latency (it is a property of a queue's wake-up, not of the SQL).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from typing import Any

from common import base_parser, emit
from dbutil import backend_of, connect, jobs_table

QUEUE = "default"


def table_name(prefix: str) -> str:
    return jobs_table(prefix)[: -len("_jobs")] + "_floor"


def ddl(backend: str, table: str) -> list[str]:
    if backend == "postgres":
        return [
            f"CREATE TABLE {table} (id bigserial PRIMARY KEY, queue_name varchar NOT NULL, "
            "priority integer NOT NULL DEFAULT 0, arguments text, created_at timestamp NOT NULL)",
            f"CREATE INDEX idx_{table}_poll ON {table} (queue_name, priority, id)",
        ]
    if backend == "mysql":
        return [
            f"CREATE TABLE {table} (id bigint AUTO_INCREMENT PRIMARY KEY, queue_name varchar(255) NOT NULL, "
            "priority integer NOT NULL DEFAULT 0, arguments mediumtext, created_at datetime(6) NOT NULL, "
            "INDEX idx_poll (queue_name, priority, id)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        ]
    return [
        f"CREATE TABLE {table} (id integer PRIMARY KEY, queue_name varchar NOT NULL, "
        "priority integer NOT NULL DEFAULT 0, arguments text, created_at text NOT NULL)",
        f"CREATE INDEX idx_{table}_poll ON {table} (queue_name, priority, id)",
    ]


def open_conn(url: str) -> Any:
    conn = connect(url)
    backend = backend_of(url)
    if backend == "sqlite":
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    elif backend == "mysql":
        cur = conn.cursor()
        cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        cur.close()
    return conn


def params(backend: str) -> str:
    return "?" if backend == "sqlite" else "%s"


def row(i: int) -> tuple[Any, ...]:
    now = time.strftime("%Y-%m-%d %H:%M:%S")
    return (QUEUE, 0, json.dumps({"job_class": "NoopJob", "arguments": [i]}), now)


def insert_sql(backend: str, table: str) -> str:
    q = params(backend)
    return f"INSERT INTO {table} (queue_name, priority, arguments, created_at) VALUES ({q}, {q}, {q}, {q})"


def begin(conn: Any, backend: str) -> None:
    if backend == "sqlite":
        conn.execute("BEGIN IMMEDIATE")
    elif backend == "mysql":
        conn.begin()
    # psycopg: callers use conn.transaction()


def bulk_insert(url: str, table: str, n: int, start: int = 0) -> None:
    backend = backend_of(url)
    conn = open_conn(url)
    try:
        rows = [row(i) for i in range(start, start + n)]
        sql = insert_sql(backend, table)
        if backend == "postgres":
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(sql, rows)
        else:
            begin(conn, backend)
            cur = conn.cursor()
            cur.executemany(sql, rows)
            cur.close()
            conn.commit() if backend == "mysql" else conn.execute("COMMIT")
    finally:
        conn.close()


def scenario_enqueue_one(url: str, table: str, n: int) -> dict[str, Any]:
    backend = backend_of(url)
    conn = open_conn(url)
    sql = insert_sql(backend, table)
    try:
        cur = conn.cursor()
        for i in range(10):  # warm-up, not timed
            cur.execute(sql, row(-i - 1))
        t0 = time.perf_counter()
        for i in range(n):
            cur.execute(sql, row(i))
        elapsed = time.perf_counter() - t0
        cur.close()
    finally:
        conn.close()
    return {"jobs": n, "seconds": elapsed, "jobs_per_s": n / elapsed}


def scenario_enqueue_bulk(url: str, table: str, n: int) -> dict[str, Any]:
    bulk_insert(url, table, 1, start=-1)  # the same one-row warm-up as the others
    t0 = time.perf_counter()
    bulk_insert(url, table, n)
    elapsed = time.perf_counter() - t0
    return {"jobs": n, "seconds": elapsed, "jobs_per_s": n / elapsed}


def claim_delete(conn: Any, backend: str, table: str, batch: int) -> int:
    """Remove up to ``batch`` jobs in one transaction; how many it removed."""
    pick = f"SELECT id FROM {table} WHERE queue_name = '{QUEUE}' ORDER BY priority, id LIMIT {batch}"
    if backend == "postgres":
        cur = conn.execute(f"DELETE FROM {table} WHERE id IN ({pick} FOR UPDATE SKIP LOCKED) RETURNING id")
        return len(cur.fetchall())
    if backend == "sqlite":
        cur = conn.execute(f"DELETE FROM {table} WHERE id IN ({pick}) RETURNING id")
        return len(cur.fetchall())
    cur = conn.cursor()
    conn.begin()
    cur.execute(pick + " FOR UPDATE SKIP LOCKED")
    ids = [r[0] for r in cur.fetchall()]
    if ids:
        cur.execute(f"DELETE FROM {table} WHERE id IN ({', '.join(str(int(i)) for i in ids)})")
    conn.commit()
    cur.close()
    return len(ids)


def transient(exc: Exception) -> bool:
    """A deadlock or lock-wait timeout (MariaDB 1213/1205, PostgreSQL 40P01/55P03, SQLite busy)."""
    code = getattr(exc, "args", [None])[0]
    return code in (1213, 1205) or getattr(exc, "sqlstate", None) in ("40P01", "55P03") or "locked" in str(exc)


def scenario_drain(url: str, table: str, n: int, threads: int, batch: int) -> dict[str, Any]:
    backend = backend_of(url)
    for start in range(0, n, 10_000):
        bulk_insert(url, table, min(10_000, n - start), start)
    removed = [0] * threads
    retried = [0] * threads
    errors: list[str] = []
    ready = threading.Barrier(threads + 1)

    def drain(k: int) -> None:
        conn = open_conn(url)  # in the thread that uses it (sqlite3 insists)
        try:
            ready.wait()
            while True:
                try:
                    got = claim_delete(conn, backend, table, batch)
                except Exception as exc:
                    if not transient(exc):
                        raise
                    retried[k] += 1  # a deadlock or lock wait: roll back and go again, as a queue would
                    conn.rollback()
                    continue
                if not got:
                    return
                removed[k] += got
        except Exception as exc:  # reported, never swallowed
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            conn.close()

    workers = [threading.Thread(target=drain, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    ready.wait()
    t0 = time.perf_counter()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - t0
    if errors:
        return {"error": errors[0], "errors": len(errors)}
    if sum(removed) != n:
        return {"error": f"removed {sum(removed)} of {n} jobs"}
    return {
        "jobs": n,
        "threads": threads,
        "batch": batch,
        "seconds": elapsed,
        "jobs_per_s": n / elapsed,
        "retried_transactions": sum(retried),
    }


def main(argv: list[str] | None = None) -> None:
    p = base_parser(__doc__, ["floor"])
    p.add_argument("--batch", type=int, default=0, help="jobs per claim+delete transaction (default 1 or 100)")
    args: argparse.Namespace = p.parse_args(argv)
    backend = backend_of(args.url)
    table = table_name(args.prefix)
    conn = open_conn(args.url)
    try:
        for stmt in ddl(backend, table):
            conn.cursor().execute(stmt)
    finally:
        conn.close()
    try:
        if args.scenario == "enqueue_one":
            result = scenario_enqueue_one(args.url, table, args.jobs)
        elif args.scenario == "enqueue_bulk":
            result = scenario_enqueue_bulk(args.url, table, args.jobs)
        elif args.scenario == "drain":
            threads = args.threads or 1
            batch = args.batch or (1 if threads == 1 else 100)
            result = scenario_drain(args.url, table, args.jobs, threads, batch)
        else:
            result = {"error": f"the floor has no {args.scenario} scenario"}
    except Exception as exc:
        result = {"error": f"{type(exc).__name__}: {exc}"}
    emit(result)
    sys.exit(0 if "error" not in result else 1)


if __name__ == "__main__":
    main()
