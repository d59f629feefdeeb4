"""Worker processes: one beside the fork supervisor with two, and 1/2/4/8 processes on one queue.

    python bench/processes.py                         # all backends: 1 process vs supervisor + 2
    python bench/processes.py --backends postgres --noop-jobs 10000 --cpu-jobs 2000
    python bench/processes.py --scaling [--backends postgres,mysql] [--counts 1,2,4,8] [--noop-jobs 20000]

For each backend and workload, N jobs are enqueued in bulk, then `python -m quebec` drains
them: once as one process (3 threads), once with QUEBEC_SUPERVISOR=1 and a queue.yml of
`processes: 2` (3 threads each). Timed from the start of the command until plain SQL sees
every job finished. The CPU-bound job spins ~5 ms of pure Python, which one process's GIL
serialises; two processes use two cores.

--scaling: QUEBEC_SUPERVISOR=1 with `processes: N` (3 threads each) for each N of --counts,
draining no-op jobs from one queue. The workers' log (stderr, with the `quebec.store` logger at
DEBUG so that every transaction rerun after a deadlock or lock wait is printed) is grepped for
deadlock / lock-wait errors, and the server's own deadlock counter (pg_stat_database.deadlocks,
MariaDB's Innodb_deadlocks; server-wide, so other clients' deadlocks count too) is read before
and after. Both must be zero.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

import quebec  # noqa: E402
from common import job_package  # noqa: E402
from quebec.dialects import for_url  # noqa: E402

URLS = {
    "sqlite": "sqlite:///{tmp}/bench.db?mode=rwc",
    "postgres": "postgresql://postgres@127.0.0.1:5432/test",
    "mysql": "mysql://root@127.0.0.1:3306/test",
}
PACKAGE = """
import logging
import os
import time

import quebec

if os.environ.get("BENCH_STORE_DEBUG"):  # print transact()'s reruns (deadlocks, lock waits)
    logging.getLogger("quebec.store").setLevel(logging.DEBUG)


class Noop(quebec.BaseClass):
    def perform(self, n):
        pass


class Spin(quebec.BaseClass):
    def perform(self, n):
        end = time.perf_counter() + 0.005
        x = 0
        while time.perf_counter() < end:
            x += 1
"""
QUEUE_YML = "workers:\n  - queues: ['*']\n    threads: 3\n    processes: {processes}\n"


LOCK_ERRORS = re.compile(r"deadlock|lock wait|1213|1205|40P01|55P03|could not obtain lock|lock timeout", re.I)


def drain(
    backend: str, job: str, jobs: int, processes: int, *, supervisor: bool | None = None, log: str | None = None
) -> float:
    """Jobs/s of `python -m quebec` draining `jobs` jobs of class `job`; its stderr goes to `log`
    (and the store's reruns too) when given. The supervisor forks when processes > 1 or asked to."""
    tmp = tempfile.mkdtemp(prefix="quebec-procs-")
    url = URLS[backend].format(tmp=tmp)
    prefix = f"p_{secrets.token_hex(4)}"
    package = f"proc_jobs_{prefix}"
    (Path(tmp) / "queue.yml").write_text(QUEUE_YML.format(processes=processes))
    module = job_package(tmp, package, PACKAGE)
    qc = quebec.Quebec(url, table_name_prefix=prefix)
    qc.create_tables()
    cls = getattr(module, job)
    qc.perform_all_later([cls.build(n) for n in range(jobs)])
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUEBEC_")}
    env.update(
        DATABASE_URL=url,
        QUEBEC_TABLE_NAME_PREFIX=prefix,
        QUEBEC_LOG_LEVEL="WARNING",
        PYTHONPATH=os.pathsep.join([tmp, str(HERE.parent / "src")]),
    )
    if processes > 1 if supervisor is None else supervisor:
        env["QUEBEC_SUPERVISOR"] = "1"
    if log:
        env["BENCH_STORE_DEBUG"] = "1"
    engine = create_engine(for_url(url)[0])
    stderr = open(log, "w") if log else None  # noqa: SIM115 (closed in finally)
    started = time.monotonic()
    worker = subprocess.Popen([sys.executable, "-m", "quebec", package], env=env, cwd=tmp, stderr=stderr)
    try:
        sql = text(f"SELECT COUNT(*) FROM {prefix}_jobs WHERE finished_at IS NOT NULL")
        while True:
            with engine.connect() as conn:
                if conn.execute(sql).scalar_one() >= jobs:
                    break
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited {worker.returncode} before draining")
            time.sleep(0.05)
        elapsed = time.monotonic() - started
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
        if stderr:
            stderr.close()
        engine.dispose()
        with qc.db.engine.begin() as conn:
            for table in reversed(qc.db.tables.metadata.sorted_tables):
                table.drop(conn, checkfirst=True)
        qc.close()
    return jobs / elapsed


def server_deadlocks(backend: str) -> int:
    """The server's deadlock counter (PostgreSQL: this database's; MariaDB: the whole server's)."""
    engine = create_engine(for_url(URLS[backend])[0])
    try:
        with engine.connect() as conn:
            if backend == "postgres":
                sql = "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
                return int(conn.execute(text(sql)).scalar_one())
            row = conn.execute(text("SHOW GLOBAL STATUS LIKE 'Innodb_deadlocks'")).one()
            return int(row[1])
    finally:
        engine.dispose()


def scaling(args: argparse.Namespace) -> int:
    counts = [int(c) for c in args.counts.split(",")]
    print(
        f"| backend | worker processes (3 threads each) | {args.noop_jobs:,} no-op jobs, jobs/s "
        "| deadlock / lock-wait lines in the log | server deadlock counter, change |"
    )
    print("|---|---:|---:|---:|---:|")
    bad = 0
    for backend in args.backends.split(","):
        for n in counts:
            log = os.path.join(tempfile.gettempdir(), f"quebec-scaling-{backend}-{n}.log")
            before = server_deadlocks(backend) if backend != "sqlite" else 0
            rate = drain(backend, "Noop", args.noop_jobs, n, supervisor=True, log=log)
            after = server_deadlocks(backend) if backend != "sqlite" else 0
            with open(log) as fh:
                hits = [line for line in fh if LOCK_ERRORS.search(line)]
            bad += len(hits) + (after - before)
            print(f"| {backend} | {n} | {rate:,.0f} | {len(hits)} | {after - before} |", flush=True)
            for line in hits[:3]:
                print(f"  {line.strip()[:200]}", file=sys.stderr)
    return 1 if bad else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default=None, help="default sqlite,postgres,mysql (--scaling: postgres,mysql)")
    parser.add_argument("--noop-jobs", type=int, default=None, help="default 10000 (--scaling: 20000)")
    parser.add_argument("--cpu-jobs", type=int, default=1_000)
    parser.add_argument("--scaling", action="store_true", help="1/2/4/8 supervised processes, lock errors counted")
    parser.add_argument("--counts", default="1,2,4,8", help="process counts for --scaling")
    args = parser.parse_args()
    if args.scaling:
        args.backends = args.backends or "postgres,mysql"
        args.noop_jobs = args.noop_jobs or 20_000
        return scaling(args)
    args.backends = args.backends or "sqlite,postgres,mysql"
    args.noop_jobs = args.noop_jobs or 10_000
    print("| backend | jobs | 1 process, jobs/s | supervisor + 2 processes, jobs/s | ratio |")
    print("|---|---|---:|---:|---:|")
    for backend in args.backends.split(","):
        for job, n in (("Noop", args.noop_jobs), ("Spin", args.cpu_jobs)):
            one = drain(backend, job, n, 1)
            two = drain(backend, job, n, 2)
            what = f"{n:,} no-op" if job == "Noop" else f"{n:,} × 5 ms CPU"
            print(f"| {backend} | {what} | {one:,.0f} | {two:,.0f} | {two / one:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
