"""How soon job.wait() returns after a worker in another process finishes the job, and how
many times it read the tables meanwhile (ours only: the Rust wheel has no wait).

    python bench/wait_latency.py                      # all backends, 100 jobs each
    python bench/wait_latency.py --backends postgres --jobs 300

A worker (`python -m quebec`, default settings) runs in a subprocess. The harness enqueues
one job at a time and waits for it; the job returns `time.time()` as it ends, so
`time.time()` when wait() returns, minus the result, is the wake-up latency: the
completer's write and commit, the wake-up (NOTIFY on PostgreSQL, polling with backoff
elsewhere) and the waiter's read. `reads/wait` counts the waiter's table reads per job
(1 = it found the job done on its first read; on PostgreSQL it sleeps on NOTIFY between reads).
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

import quebec  # noqa: E402
from common import job_package  # noqa: E402

URLS = {
    "sqlite": "sqlite:///{tmp}/wait.db?mode=rwc",
    "postgres": "postgresql://postgres@127.0.0.1:5432/test",
    "mysql": "mysql://root@127.0.0.1:3306/test",
}
PACKAGE = """
import time

import quebec


class Stamp(quebec.BaseClass):
    def perform(self):
        return time.time()
"""


def measure(backend: str, jobs: int, spacing: float) -> dict[str, float]:
    tmp = tempfile.mkdtemp(prefix="quebec-wait-")
    url = URLS[backend].format(tmp=tmp)
    prefix = f"w_{secrets.token_hex(4)}"
    package = f"wait_jobs_{prefix}"
    module = job_package(tmp, package, PACKAGE)
    qc = quebec.Quebec(url, table_name_prefix=prefix)
    qc.create_tables()
    qc.register_job(module.Stamp)
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUEBEC_")}
    env.update(
        DATABASE_URL=url,
        QUEBEC_TABLE_NAME_PREFIX=prefix,
        QUEBEC_LOG_LEVEL="WARNING",
        PYTHONPATH=os.pathsep.join([tmp, str(HERE.parent / "src")]),
    )
    worker = subprocess.Popen([sys.executable, "-m", "quebec", package], env=env, cwd=tmp)
    try:
        qc.wait_for_job(module.Stamp.perform_later(), timeout=60)  # warm: the worker is up
        latencies, reads = [], []
        for _ in range(jobs):
            time.sleep(spacing)
            job = module.Stamp.perform_later()
            before = qc._waiting().reads
            finished_at = job.wait(timeout=30)
            latencies.append((time.time() - finished_at) * 1000)
            reads.append(qc._waiting().reads - before)
    finally:
        worker.terminate()
        worker.wait(30)
        qc.db.engine.dispose()
        with qc.db.engine.begin() as conn:
            for table in reversed(qc.db.tables.metadata.sorted_tables):
                table.drop(conn, checkfirst=True)
        qc.close()
    q = statistics.quantiles(latencies, n=20)
    return {"p50": statistics.median(latencies), "p95": q[18], "reads": statistics.mean(reads)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="sqlite,postgres,mysql")
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--spacing", type=float, default=0.02, help="seconds between jobs")
    args = parser.parse_args()
    print("| backend | wait() after the job finished, p50 ms | p95 ms | table reads per wait |")
    print("|---|---:|---:|---:|")
    for backend in args.backends.split(","):
        r = measure(backend, args.jobs, args.spacing)
        print(f"| {backend} | {r['p50']:.1f} | {r['p95']:.1f} | {r['reads']:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
