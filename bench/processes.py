"""One worker process beside the fork supervisor with two, on no-op and CPU-bound jobs.

    python bench/processes.py                         # all backends
    python bench/processes.py --backends postgres --noop-jobs 10000 --cpu-jobs 2000

For each backend and workload, N jobs are enqueued in bulk, then `python -m quebec` drains
them: once as one process (3 threads), once with QUEBEC_SUPERVISOR=1 and a queue.yml of
`processes: 2` (3 threads each). Timed from the start of the command until plain SQL sees
every job finished. The CPU-bound job spins ~5 ms of pure Python, which one process's GIL
serialises; two processes use two cores.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from sqlalchemy import create_engine, text

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

import quebec  # noqa: E402
from quebec.dialects import for_url  # noqa: E402

URLS = {
    "sqlite": "sqlite:///{tmp}/bench.db?mode=rwc",
    "postgres": "postgresql://postgres@127.0.0.1:5432/test",
    "mysql": "mysql://root@127.0.0.1:3306/test",
}
PACKAGE = """
import time

import quebec


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


def drain(backend: str, job: str, jobs: int, processes: int) -> float:
    tmp = tempfile.mkdtemp(prefix="quebec-procs-")
    url = URLS[backend].format(tmp=tmp)
    prefix = f"p_{secrets.token_hex(4)}"
    package = f"proc_jobs_{prefix}"
    (Path(tmp) / package).mkdir()
    (Path(tmp) / package / "__init__.py").write_text(textwrap.dedent(PACKAGE))
    (Path(tmp) / "queue.yml").write_text(QUEUE_YML.format(processes=processes))
    sys.path.insert(0, tmp)
    module = __import__(package)
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
    if processes > 1:
        env["QUEBEC_SUPERVISOR"] = "1"
    engine = create_engine(for_url(url)[0])
    started = time.monotonic()
    worker = subprocess.Popen([sys.executable, "-m", "quebec", package], env=env, cwd=tmp)
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
        engine.dispose()
        with qc.db.engine.begin() as conn:
            for table in reversed(qc.db.tables.metadata.sorted_tables):
                table.drop(conn, checkfirst=True)
        qc.close()
    return jobs / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="sqlite,postgres,mysql")
    parser.add_argument("--noop-jobs", type=int, default=10_000)
    parser.add_argument("--cpu-jobs", type=int, default=1_000)
    args = parser.parse_args()
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
