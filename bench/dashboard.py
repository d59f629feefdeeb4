"""Dashboard pages on a big PostgreSQL database: p50/p95 per page.

    .venv/bin/python bench/dashboard.py [--url postgresql://…] [--finished 1000000] [--failed 100000]
        [--requests 30] [--keep]

Fills tables of their own (prefix ``dash_<hex>``, dropped at the end unless --keep) with plain
``INSERT … SELECT generate_series``: ``--finished`` finished jobs (finished_at spread over the
last 30 days), ``--failed`` failed jobs (jobs + failed_executions with an error JSON), and a
few thousand ready, scheduled and blocked ones; then VACUUM ANALYZE, as autovacuum would. Then it
times ``--requests`` GETs of every page through Starlette's TestClient (the whole request in
this process: routing, the reads, rendering) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import time
import warnings
from typing import Any

from sqlalchemy import text

import quebec

warnings.filterwarnings("ignore", message=".*httpx.*")
from starlette.testclient import TestClient  # noqa: E402

DEFAULT_URL = os.environ.get("QUEBEC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
CHUNK = 250_000
TARGET_MS = 200.0


class BenchJob(quebec.BaseClass):
    def perform(self, n: int) -> None:
        pass


def raw(conn: Any, sql: str) -> None:
    """Plain SQL to the driver (psycopg: a literal % is written %%)."""
    conn.exec_driver_sql(sql.replace("%", "%%"))


def fill(qc: quebec.Quebec, finished: int, failed: int) -> dict[str, int]:
    t = qc.db.tables
    now = "(now() AT TIME ZONE 'utc')"
    jobs_columns = (
        "queue_name, class_name, arguments, priority, active_job_id, scheduled_at, finished_at, created_at, updated_at"
    )

    def job_select(first: int, count: int, finished_expr: str, executions: int = 0) -> str:
        return (
            f"SELECT 'queue' || (n % 5), 'BenchJob', "
            f'\'{{"arguments":{{"arguments":[\' || n || \']}},"executions":{executions}}}\', n % 3, '
            f"substr(md5(n::text), 1, 12), {now} - (n % 2592000) * interval '1 second' - interval '5 seconds', "
            f"{finished_expr}, {now} - (n % 2592000) * interval '1 second' - interval '5 seconds', {now} "
            f"FROM generate_series({first}, {first + count - 1}) AS g(n)"
        )

    with qc.db.engine.begin() as conn:
        done_at = f"{now} - (n % 2592000) * interval '1 second'"
        for first in range(1, finished + 1, CHUNK):
            count = min(CHUNK, finished - first + 1)
            raw(conn, f"INSERT INTO {t.jobs.name} ({jobs_columns}) " + job_select(first, count, done_at))
        base = finished + 1
        raw(conn, f"INSERT INTO {t.jobs.name} ({jobs_columns}) " + job_select(base, failed, "NULL", executions=1))
        raw(
            conn,
            f"INSERT INTO {t.failed_executions.name} (job_id, error, created_at) "
            f'SELECT id, \'{{"exception_class": "TimeoutError", "message": "upstream timed out after \' '
            f'|| (id % 30) || \'s", "backtrace": ["app.py:10 in perform"]}}\', created_at + interval \'1 second\' '
            f"FROM {t.jobs.name} WHERE id >= {base}",
        )
    # The live states, through the API, so that every row is as the engine writes it.
    qc.perform_all_later([BenchJob.build(n) for n in range(2000)])
    qc.perform_all_later([BenchJob.set(wait=3600).build(n) for n in range(2000)])
    with qc.db.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in (t.jobs, t.failed_executions, t.ready_executions, t.scheduled_executions):
            conn.execute(text(f"VACUUM ANALYZE {table.name}"))
        first_failed = conn.execute(text(f"SELECT min(job_id) FROM {t.failed_executions.name}")).scalar()
        middle = conn.execute(text(f"SELECT max(id) / 2 FROM {t.jobs.name}")).scalar()
        # One failed job that is a retry (a run failed before this one): its page searches the attempts.
        raw(
            conn,
            f"UPDATE {t.jobs.name} SET arguments = replace(arguments, '\"executions\":1', '\"executions\":2') "
            f"WHERE id = {int(first_failed or 1) + 1}",
        )
    return {"failed_job": int(first_failed or 1), "middle": int(middle or 1)}


def drop(qc: quebec.Quebec) -> None:
    with qc.db.engine.begin() as conn:
        for table in reversed(qc.db.tables.metadata.sorted_tables):
            conn.execute(text(f"DROP TABLE IF EXISTS {table.name} CASCADE"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--finished", type=int, default=1_000_000)
    parser.add_argument("--failed", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="leave the tables (prefix printed)")
    args = parser.parse_args()

    prefix = f"dash_{secrets.token_hex(3)}"
    qc = quebec.Quebec(args.url, table_name_prefix=prefix, recurring_pause=True)
    qc.create_tables()
    qc.register_job(BenchJob)
    try:
        started = time.monotonic()
        ids = fill(qc, args.finished, args.failed)
        qc.schedule("nightly", BenchJob, "every day at 3am", args=[0])
        print(f"filled {args.finished:,} finished + {args.failed:,} failed jobs in {time.monotonic() - started:.0f}s")
        pages = [
            "/",
            "/health",
            "/queues",
            "/jobs/ready",
            "/jobs/scheduled",
            "/jobs/blocked",
            "/jobs/in-progress",
            "/jobs/failed",
            "/jobs/failed?error=after+7s",
            "/jobs/finished",
            f"/jobs/finished?before={ids['middle']}",
            "/jobs/finished?queue=queue3",
            f"/job/{ids['failed_job']}",
            f"/job/{ids['failed_job'] + 1}",  # a retry: its attempts are searched by active_job_id
            "/recurring",
            "/processes",
            "/keys",
        ]
        rows = []
        with TestClient(qc.asgi_app(), base_url="http://127.0.0.1", client=("127.0.0.1", 1)) as client:
            for path in pages:
                first = client.get(path)
                assert first.status_code in (200, 503 if path == "/health" else 200), (path, first.text[:300])
                times = []
                for _ in range(args.requests):
                    t0 = time.perf_counter()
                    client.get(path)
                    times.append((time.perf_counter() - t0) * 1000)
                times.sort()
                p50 = statistics.median(times)
                p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
                rows.append((path, p50, p95))
        print(f"\n{args.requests} requests per page, PostgreSQL, {args.finished:,} finished + {args.failed:,} failed\n")
        print("| page | p50 ms | p95 ms | < 200 ms |")
        print("|---|---:|---:|:-:|")
        for path, p50, p95 in rows:
            print(f"| `{path}` | {p50:.1f} | {p95:.1f} | {'yes' if p95 < TARGET_MS else 'NO'} |")
    finally:
        if args.keep:
            print(f"tables kept: prefix {prefix}")
        else:
            drop(qc)
        qc.close()


if __name__ == "__main__":
    main()
