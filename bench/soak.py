"""Soak (ours only): is a worker's memory flat over a long run?

    .venv/bin/python bench/soak.py [--backend postgres] [--jobs 200000] [--threads 8]
    .venv/bin/python bench/soak.py --jobs 1000000          # the long one (~5-10 min here)

One `python -m quebec` worker process (no supervisor, `--threads` threads, default settings:
finished jobs are kept) drains `--jobs` no-op jobs, which this script enqueues in bulk chunks
of 10,000 whenever fewer than 20,000 are ready, so the worker never idles and the backlog
stays bounded. Every `--sample` seconds psutil reads the worker's RSS and plain SQL counts
the finished jobs. Prints the RSS at each tenth of the jobs, and the growth from the first
tenth (warm) to the end; exits 1 if that growth is more than `--max-growth-mb` (default 50).
Tables (prefix `sk_<hex>`) are dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from sqlalchemy import func, select

from processes import PACKAGE, URLS

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

import quebec  # noqa: E402
from common import job_package  # noqa: E402

CHUNK = 10_000
BACKLOG = 20_000


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", default="postgres", choices=sorted(URLS))
    p.add_argument("--jobs", type=int, default=200_000)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--sample", type=float, default=1.0, help="seconds between samples")
    p.add_argument("--max-growth-mb", type=float, default=50.0)
    args = p.parse_args(argv)

    tmp = tempfile.mkdtemp(prefix="quebec-soak-")
    url = URLS[args.backend].format(tmp=tmp)
    prefix = f"sk_{secrets.token_hex(4)}"
    package = f"soak_jobs_{prefix}"
    module = job_package(tmp, package, PACKAGE)
    qc = quebec.Quebec(url, table_name_prefix=prefix)
    qc.create_tables()
    t = qc.db.tables
    ready_sql = select(func.count()).select_from(t.ready_executions)
    done_sql = select(func.count()).where(t.jobs.c.finished_at.is_not(None))

    def scalar(stmt: object) -> int:
        return int(qc.db.read(lambda tx: tx.conn.execute(stmt).scalar()) or 0)

    enqueued = 0

    def feed() -> None:
        nonlocal enqueued
        while enqueued < args.jobs and scalar(ready_sql) < BACKLOG:
            n = min(CHUNK, args.jobs - enqueued)
            qc.perform_all_later([module.Noop.build(i) for i in range(enqueued, enqueued + n)])
            enqueued += n

    feed()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUEBEC_")}
    env.update(
        DATABASE_URL=url,
        QUEBEC_TABLE_NAME_PREFIX=prefix,
        QUEBEC_LOG_LEVEL="WARNING",
        QUEBEC_WORKER_THREADS=str(args.threads),
        PYTHONPATH=os.pathsep.join([tmp, str(HERE.parent / "src")]),
    )
    started = time.monotonic()
    worker = subprocess.Popen([sys.executable, "-m", "quebec", package], env=env, cwd=tmp)
    proc = psutil.Process(worker.pid)
    samples: list[tuple[float, int, float]] = []  # (seconds, finished, rss MB)
    try:
        while True:
            feed()
            done = scalar(done_sql)
            samples.append((time.monotonic() - started, done, proc.memory_info().rss / 2**20))
            if done >= args.jobs:
                break
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited {worker.returncode} after {done} jobs")
            time.sleep(args.sample)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
        with qc.db.engine.begin() as conn:
            for table in reversed(t.metadata.sorted_tables):
                table.drop(conn, checkfirst=True)
        qc.close()

    took = samples[-1][0]
    rate = args.jobs / took
    print(f"{args.backend}: {args.jobs:,} no-op jobs, {args.threads} threads, {took:.0f} s ({rate:,.0f} jobs/s)")
    print("| jobs finished | seconds | worker RSS, MB |")
    print("|---:|---:|---:|")
    marks = []
    for tenth in range(1, 11):
        target = args.jobs * tenth // 10
        s = next(s for s in samples if s[1] >= target)
        marks.append(s)
        print(f"| {s[1]:,} | {s[0]:.0f} | {s[2]:.1f} |")
    warm, end = marks[0][2], marks[-1][2]
    peak = max(s[2] for s in samples)
    growth = end - warm
    print(f"\nRSS after the first tenth {warm:.1f} MB, at the end {end:.1f} MB ({growth:+.1f} MB), peak {peak:.1f} MB")
    return 1 if growth > args.max_growth_mb else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
