"""Flow-control benchmark (ours only): does a full jobs table or a crowd of blocked jobs slow a drain?

    .venv/bin/python bench/flow.py [--backends sqlite,postgres,mysql] [--jobs 10000] [--runs 3]

Per backend, three drains of `--jobs` no-op jobs by one runtime with 8 threads, each on fresh
tables, best of `--runs`:

- empty: nothing else in the tables;
- crowded: 1,000 blocked jobs (a limit-1 key whose holder sits in a queue no worker takes)
  and 100,000 finished jobs in the tables;
- keyed: the jobs spread over 100 concurrency keys with a limit of 2 each.

The same classes are registered in every run (a limited class among them), so the three runs
take the same code path and differ only in what the tables hold. Timed from qc.start() until a
count of finished jobs (every 20 ms) reaches the target.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import func, insert, select, text

import quebec
from quebec.dialects import for_url
from quebec.schema import build_tables

SETTLE = 5.0
URLS = {
    "sqlite": "sqlite:////tmp/quebec-flow-bench-{token}.db?mode=rwc",
    "postgres": "postgresql://postgres@127.0.0.1:5432/test",
    "mysql": "mysql://root@127.0.0.1:3306/test",
}


class NoopJob(quebec.BaseClass):
    def perform(self, i: int) -> None:
        pass


class OldJob(quebec.BaseClass):
    """The finished jobs of the crowded tables (a class of their own: the count ignores them)."""

    def perform(self, i: int) -> None:
        pass


class KeyedJob(quebec.BaseClass):
    concurrency_limit = 2
    concurrency_duration = 600

    def concurrency_key(self, i: int) -> str:
        return str(i % 100)

    def perform(self, i: int) -> None:
        pass


class HeldJob(quebec.BaseClass):
    queue_as = "parked"  # no worker of the benchmark takes this queue
    concurrency_limit = 1
    concurrency_duration = 3600

    def perform(self, i: int) -> None:
        pass


def finished(qc: Any, class_name: str) -> int:
    jobs = qc.db.tables.jobs
    stmt = select(func.count()).where(jobs.c.class_name == class_name, jobs.c.finished_at.is_not(None))
    return int(qc.db.read(lambda tx: tx.conn.execute(stmt).scalar()) or 0)


def _crowd(qc: Any) -> None:
    """1,000 blocked jobs behind one parked holder, and 100,000 finished jobs written straight
    into the jobs table (as the history of a queue; not pushed through ready_executions, so
    the drain does not also measure the server still purging 100,000 deleted ready rows)."""
    qc.perform_all_later([HeldJob.build(i) for i in range(1001)])

    def finished(tx: Any, start: int) -> None:
        now = tx.now
        rows = [
            {
                "queue_name": "default",
                "class_name": "OldJob",
                "arguments": "{}",
                "priority": 0,
                "active_job_id": f"old{i:09d}",
                "scheduled_at": now,
                "finished_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for i in range(start, start + 10_000)
        ]
        tx.conn.execute(insert(tx.tables.jobs), rows)

    for start in range(0, 100_000, 10_000):
        qc.db.transact(finished, start)


def timed_run(
    qc: Any, done: Callable[[], bool], *, spawn: Iterable[str] | None = None, threads: int | None = None
) -> float:
    """Seconds from qc.start() until done() (checked every 20 ms); the runtime is stopped after."""
    started = time.perf_counter()
    qc.start(spawn=spawn, threads=threads)
    try:
        while not done():
            time.sleep(0.02)
        return time.perf_counter() - started
    finally:
        qc.stop()


def drain(url: str, scenario: str, jobs: int) -> float:
    prefix = f"fb_{secrets.token_hex(4)}"
    qc = quebec.Quebec(url, table_name_prefix=prefix, queues=["default"], worker_polling_interval=0.05)
    try:
        qc.create_tables()
        for cls in (NoopJob, OldJob, KeyedJob, HeldJob):
            qc.register_job(cls)
        if scenario == "crowded":
            _crowd(qc)
            time.sleep(SETTLE)  # let the server write out 100,000 new rows before timing
        job_class = KeyedJob if scenario == "keyed" else NoopJob
        qc.perform_all_later([job_class.build(i) for i in range(jobs)])
        return jobs / timed_run(qc, lambda: finished(qc, job_class.__qualname__) >= jobs, threads=8)
    finally:
        qc.close()
        drop(url, prefix)


def drop(url: str, prefix: str) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(for_url(url)[0])
    with engine.begin() as conn:
        for table in reversed(build_tables(prefix).metadata.sorted_tables):
            conn.execute(text(f"DROP TABLE IF EXISTS {table.name}"))
    engine.dispose()


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backends", default="sqlite,postgres,mysql")
    p.add_argument("--jobs", type=int, default=10_000)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args(argv)
    rows = []
    for backend in args.backends.split(","):
        best: dict[str, float] = {}
        for scenario in ("empty", "crowded", "keyed"):
            rates = []
            for _ in range(args.runs):
                url = URLS[backend].format(token=secrets.token_hex(4))
                rates.append(drain(url, scenario, args.jobs))
            best[scenario] = max(rates)
            print(f"{backend} {scenario}: {[round(r) for r in rates]} jobs/s", file=sys.stderr, flush=True)
        change = (best["crowded"] - best["empty"]) / best["empty"] * 100
        crowded = f"{best['crowded']:,.0f} ({change:+.1f}%)"
        rows.append(f"| {backend} | {best['empty']:,.0f} | {crowded} | {best['keyed']:,.0f} |")
    keyed = f"{args.jobs:,} over 100 keys, limit 2"
    print(f"| backend | empty tables, jobs/s | 1,000 blocked + 100,000 finished | {keyed} |")
    print("|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
