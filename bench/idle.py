"""CPU of an idle worker process, per backend: what a `python -m quebec` with nothing to do costs.

    python bench/idle.py [--backends sqlite,postgres,mysql] [--seconds 10]

Starts `python -m quebec` on a package of one no-op job class, enqueues one job from this
process, then reads the worker's CPU time (psutil, user + system) over `--seconds` twice: just
after the job (a MySQL worker polls fast for 2 s after a claim) and 30 s later. Everything the
process does counts: worker polls, dispatcher, heartbeats, the scheduler.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil

URLS = {
    "sqlite": "sqlite:///{tmp}/idle.db?mode=rwc",
    "postgres": os.environ.get("QUEBEC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    "mysql": os.environ.get("QUEBEC_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test"),
}
PACKAGE = "import quebec\n\n\nclass Noop(quebec.BaseClass):\n    def perform(self) -> None:\n        pass\n"


def cpu_percent(proc: psutil.Process, seconds: float) -> float:
    before = proc.cpu_times()
    time.sleep(seconds)
    after = proc.cpu_times()
    return 100 * ((after.user + after.system) - (before.user + before.system)) / seconds


def measure(backend: str, seconds: float) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "idle_jobs.py").write_text(PACKAGE)
        url = URLS[backend].format(tmp=tmp)
        prefix = "idle_" + uuid.uuid4().hex[:6]
        env = dict(os.environ, DATABASE_URL=url, QUEBEC_TABLE_NAME_PREFIX=prefix, PYTHONPATH=tmp)
        worker = subprocess.Popen([sys.executable, "-m", "quebec", "idle_jobs"], env=env, stderr=subprocess.DEVNULL)
        try:
            sys.path.insert(0, tmp)
            from idle_jobs import Noop  # type: ignore[import-not-found]

            import quebec

            qc = quebec.Quebec(url, table_name_prefix=prefix)
            qc.create_tables()
            qc.register_job_class(Noop)
            Noop.perform_later(qc).wait(timeout=60)  # the worker is up and has run a job
            proc = psutil.Process(worker.pid)
            warm = cpu_percent(proc, seconds)
            time.sleep(30)
            cold = cpu_percent(proc, seconds)
            return warm, cold
        finally:
            worker.terminate()
            worker.wait(30)
            sys.path.remove(tmp)
            sys.modules.pop("idle_jobs", None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", default="sqlite,postgres,mysql")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print("| backend | idle worker process, first 10 s after a job | 30 s later |")
    print("|---|---:|---:|")
    for backend in args.backends.split(","):
        warm, cold = measure(backend, args.seconds)
        print(f"| {backend} | {warm:.1f}% of a core | {cold:.1f}% of a core |", flush=True)


if __name__ == "__main__":
    main()
