"""MariaDB/MySQL: does the server do more work per job when the tables are big?

    python bench/scale_counters.py [--jobs 10000] [--rounds 2]

Drains `--jobs` no-op jobs (one worker, 8 threads) `--rounds` times on empty tables, fills
them as `scale.py` does (1,000,000 finished, 100,000 scheduled, 10,000 blocked), and drains
again; for each drain it prints jobs/s and the server's `Handler_*` and `Innodb_rows_*`
counters (SHOW GLOBAL STATUS, so run it alone) per job. Work that grows with the tables
shows as more reads per job; jobs/s alone swings with whatever else the machine runs.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time

from sqlalchemy import text

import quebec
from flow import NoopJob, drop, timed_run
from scale import count, fill

URL = os.environ.get("QUEBEC_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
_COUNTERS = (
    "SHOW GLOBAL STATUS WHERE Variable_name LIKE 'Handler_%' OR Variable_name LIKE 'Innodb_rows_%' "
    "OR Variable_name = 'Innodb_buffer_pool_read_requests'"
)


def counters(qc: quebec.Quebec) -> dict[str, int]:
    with qc.db.engine.connect() as conn:
        return {str(name): int(value) for name, value in conn.execute(text(_COUNTERS))}


def drain(qc: quebec.Quebec, jobs: int) -> str:
    qc.perform_all_later([NoopJob.build(i) for i in range(jobs)])
    t = qc.db.tables
    before = counters(qc)
    seconds = timed_run(
        qc,
        lambda: count(qc, t.ready_executions) == 0 and count(qc, t.claimed_executions) == 0,
        spawn=["worker"],
        threads=8,
    )
    after = counters(qc)
    per_job = {k: (after[k] - before[k]) / jobs for k in after if after[k] - before[k] >= jobs / 2}
    shown = ", ".join(f"{k} {v:.1f}" for k, v in sorted(per_job.items()))
    return f"{jobs / seconds:,.0f} jobs/s; per job: {shown}"


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=10_000)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args(argv)
    prefix = f"sk_{secrets.token_hex(4)}"
    qc = quebec.Quebec(URL, table_name_prefix=prefix, queues=["default"])
    try:
        qc.create_tables()
        qc.register_job(NoopJob)
        for _ in range(args.rounds):
            print("empty tables:", drain(qc, args.jobs), flush=True)
        sizes = argparse.Namespace(finished=1_000_000, scheduled=100_000, blocked=10_000)
        print(f"filled in {fill(qc, sizes):.1f} s", flush=True)
        time.sleep(5)
        for _ in range(args.rounds):
            print("1,110,000 more rows:", drain(qc, args.jobs), flush=True)
    finally:
        qc.close()
        drop(URL, prefix)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
