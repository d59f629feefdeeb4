"""Scale (ours only): do dispatch and drain slow down as the tables fill?

    .venv/bin/python bench/scale.py [--backends postgres,mysql,sqlite] [--jobs 10000]
        [--finished 1000000] [--scheduled 100000] [--blocked 10000]

Per backend, on tables of their own (prefix ``sc_<hex>``), before and after the fill, the
median of ``--runs`` (3) rounds of:

1. ``--jobs`` no-op jobs are enqueued in bulk with ``wait=`` a moment, so they are scheduled;
   once they are due a runtime with only the dispatcher starts, and the time until all of them
   are ready gives **dispatch** jobs/s;
2. a runtime with only the worker (8 threads) starts, and the time until all of them are
   finished gives **drain** jobs/s (claim, perform, finish).

The fill is plain SQL (``INSERT … SELECT`` over ``generate_series`` / MariaDB's ``seq_1_to_N`` /
a recursive CTE), in chunks of 100,000 rows: ``--finished`` finished jobs in ``jobs``;
``--scheduled`` jobs scheduled a day ahead (``jobs`` + ``scheduled_executions``); ``--blocked``
jobs blocked on one concurrency key whose semaphore is full (``jobs`` + ``blocked_executions`` +
one ``semaphores`` row), in a queue no worker takes. Then ANALYZE (as autovacuum / InnoDB's
statistics would, given time) and 5 s to settle. The tables are dropped at the end.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select, text

import quebec
from flow import URLS, NoopJob, drop, finished, timed_run

CHUNK = 100_000
DUE_IN = 1.0  # seconds: the measured jobs are scheduled this far ahead
SETTLE = 5.0


def numbers(backend: str, start: int, count: int) -> tuple[str, str]:
    """(WITH prefix, FROM source) yielding a column ``n`` = start .. start+count-1."""
    if backend == "postgresql":
        return "", f"generate_series({start}, {start + count - 1}) AS g(n)"
    if backend in ("mysql", "mariadb"):
        return "", f"(SELECT seq + {start - 1} AS n FROM seq_1_to_{count}) AS g"
    cte = f"WITH RECURSIVE g(n) AS (SELECT {start} UNION ALL SELECT n + 1 FROM g WHERE n < {start + count - 1}) "
    return cte, "g"


def sql_now(backend: str, days: int = 0) -> str:
    """A naive-UTC timestamp expression, ``days`` from now, in the column type ours uses."""
    if backend == "postgresql":
        return f"(now() AT TIME ZONE 'utc' + interval '{days} day')"
    if backend in ("mysql", "mariadb"):
        return f"(UTC_TIMESTAMP(6) + INTERVAL {days} DAY)"
    return f"strftime('%Y-%m-%d %H:%M:%f', 'now', '{days:+d} day')"


def concat(backend: str, a: str, b: str) -> str:
    return f"CONCAT({a}, {b})" if backend in ("mysql", "mariadb") else f"({a} || {b})"


def insert_jobs(
    conn: Any,
    t: Any,
    backend: str,
    count: int,
    *,
    cls: str,
    queue: str,
    finished_at: bool,
    scheduled_days: int = 0,
    key: str | None = None,
) -> None:
    now = sql_now(backend)
    for start in range(1, count + 1, CHUNK):
        with_, source = numbers(backend, start, min(CHUNK, count - start + 1))
        conn.execute(
            text(
                f"{with_}INSERT INTO {t.jobs.name} (queue_name, class_name, arguments, priority, active_job_id, "
                "scheduled_at, finished_at, concurrency_key, created_at, updated_at) "
                f"SELECT '{queue}', '{cls}', '{{}}', 0, {concat(backend, repr(cls.lower()), 'n')}, "
                f"{sql_now(backend, scheduled_days)}, {now if finished_at else 'NULL'}, "
                f"{repr(key) if key else 'NULL'}, {now}, {now} FROM {source}"
            )
        )
        conn.commit()


def fill(qc: Any, args: argparse.Namespace) -> float:
    """Fill the tables with plain SQL; returns the seconds it took."""
    t = qc.db.tables
    backend = qc.db.engine.dialect.name
    started = time.perf_counter()
    key = "HeldJob/parked"
    with qc.db.engine.connect() as conn:
        insert_jobs(conn, t, backend, args.finished, cls="OldJob", queue="default", finished_at=True)
        insert_jobs(
            conn, t, backend, args.scheduled, cls="LaterJob", queue="default", finished_at=False, scheduled_days=1
        )
        conn.execute(
            text(
                f"INSERT INTO {t.scheduled_executions.name} (job_id, queue_name, priority, scheduled_at, created_at) "
                f"SELECT id, queue_name, priority, scheduled_at, created_at FROM {t.jobs.name} "
                "WHERE class_name = 'LaterJob'"
            )
        )
        conn.commit()
        insert_jobs(conn, t, backend, args.blocked, cls="HeldJob", queue="parked", finished_at=False, key=key)
        conn.execute(
            text(
                f"INSERT INTO {t.blocked_executions.name} "
                "(job_id, queue_name, priority, concurrency_key, expires_at, created_at) "
                f"SELECT id, queue_name, priority, concurrency_key, {sql_now(backend, 1)}, created_at "
                f"FROM {t.jobs.name} WHERE class_name = 'HeldJob'"
            )
        )
        now = sql_now(backend)
        conn.execute(
            text(
                f"INSERT INTO {t.semaphores.name} (`key`, value, expires_at, created_at, updated_at) "
                f"VALUES ('{key}', 0, {sql_now(backend, 1)}, {now}, {now})".replace(
                    "`", '"' if backend != "mysql" else "`"
                )
            )
        )
        conn.commit()
        names = [t.jobs.name, t.scheduled_executions.name, t.blocked_executions.name, t.semaphores.name]
        for name in names:
            if backend == "postgresql":
                conn.execute(text(f"ANALYZE {name}"))
            elif backend == "mysql":
                conn.execute(text(f"ANALYZE TABLE {name}")).all()
        if backend == "sqlite":
            conn.execute(text("ANALYZE"))
        conn.commit()
    return time.perf_counter() - started


def count(qc: Any, table: Any, where: Any = None) -> int:
    stmt = select(func.count()).select_from(table)
    if where is not None:
        stmt = stmt.where(where)
    return int(qc.db.read(lambda tx: tx.conn.execute(stmt).scalar()) or 0)


def phase(qc: Any, jobs: int, runs: int) -> dict[str, float]:
    """The median over ``runs`` of dispatching then draining ``jobs`` no-op jobs; jobs/s of each."""
    results = [one_phase(qc, jobs) for _ in range(runs)]
    return {k: statistics.median(r[k] for r in results) for k in ("dispatch", "drain")}


def one_phase(qc: Any, jobs: int) -> dict[str, float]:
    t = qc.db.tables
    base = finished(qc, "NoopJob")
    qc.perform_all_later([NoopJob.set(wait=DUE_IN).build(i) for i in range(jobs)])
    time.sleep(DUE_IN + 0.2)
    ready: Callable[[], bool] = lambda: count(qc, t.ready_executions) >= jobs  # noqa: E731
    dispatch = jobs / timed_run(qc, ready, spawn=["dispatcher"])
    # Drained once no execution row is left: a count of two small tables. Counting the
    # finished NoopJob rows instead read every earlier round's rows too, every 20 ms (60,000
    # by the last round on MariaDB, through its class_name index), and slowed the drain it timed.
    drained: Callable[[], bool] = lambda: count(qc, t.ready_executions) == 0 and count(qc, t.claimed_executions) == 0  # noqa: E731
    drain = jobs / timed_run(qc, drained, spawn=["worker"], threads=8)
    if finished(qc, "NoopJob") < base + jobs:
        raise RuntimeError(f"drained, but only {finished(qc, 'NoopJob') - base} of {jobs} jobs finished")
    return {"dispatch": dispatch, "drain": drain}


def run_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    url = URLS[backend].format(token=secrets.token_hex(4))
    prefix = f"sc_{secrets.token_hex(4)}"
    qc = quebec.Quebec(url, table_name_prefix=prefix, queues=["default"])
    try:
        qc.create_tables()
        qc.register_job(NoopJob)
        before = phase(qc, args.jobs, args.runs)
        print(f"{backend} before: {before}", file=sys.stderr, flush=True)
        took = fill(qc, args)
        print(f"{backend} fill: {took:.1f} s", file=sys.stderr, flush=True)
        time.sleep(SETTLE)
        after = phase(qc, args.jobs, args.runs)
        print(f"{backend} after: {after}", file=sys.stderr, flush=True)
        return {"before": before, "after": after, "fill_s": took}
    finally:
        qc.close()
        drop(url, prefix)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backends", default="postgres,mysql,sqlite")
    p.add_argument("--jobs", type=int, default=10_000)
    p.add_argument("--finished", type=int, default=1_000_000)
    p.add_argument("--scheduled", type=int, default=100_000)
    p.add_argument("--blocked", type=int, default=10_000)
    p.add_argument("--runs", type=int, default=3, help="dispatch+drain rounds per phase, the median shown")
    args = p.parse_args(argv)
    rows = []
    for backend in args.backends.split(","):
        r = run_backend(backend, args)
        for what in ("dispatch", "drain"):
            b, a = r["before"][what], r["after"][what]
            rows.append(f"| {backend} | {what} | {b:,.0f} | {a:,.0f} | {(a - b) / b * 100:+.0f}% |")
    filled = f"{args.finished:,} finished + {args.scheduled:,} scheduled + {args.blocked:,} blocked"
    print(f"| backend | {args.jobs:,} jobs | empty tables, jobs/s | {filled}, jobs/s | change |")
    print("|---|---|---:|---:|---:|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
