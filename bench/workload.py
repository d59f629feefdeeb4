"""One benchmark scenario against one ``quebec`` implementation.

Run by ``bench/run.py`` in a fresh interpreter per (backend, implementation, scenario) so the pure-Python
package and the Rust wheel (both import as ``quebec``) never meet in one process::

    <python> bench/workload.py --impl rust --url URL --prefix b_1a2b --scenario drain --threads 8 --jobs 10000

This file must only import the standard library and ``quebec``: the Rust wheel's venv has no database
drivers. Completion of the drain scenario is therefore observed by ``bench/poll.py``, started with
``--poll-python`` (the interpreter running ``run.py``), which counts ``finished_at`` with plain SQL on its
own connection.

The result is one line on stdout: ``BENCH_RESULT {json}``. Everything else (logs) goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import quebec

RESULT_MARK = "BENCH_RESULT "
HERE = os.path.dirname(os.path.abspath(__file__))

# --- job classes (module level so that a separate enqueuer process stores the same class_name) -------------

LATENCIES: list[float] = []
LATENCY_LOCK = threading.Lock()
LATENCY_TARGET = threading.Event()
LATENCY_EXPECTED = [0]
WARMED_UP = threading.Event()


PERFORMED = [0]  # perform() calls in this process (sanity check for the drain scenario)
PERFORMED_LOCK = threading.Lock()


class NoopJob(quebec.BaseClass):  # type: ignore[misc]
    def perform(self, i: int) -> None:
        with PERFORMED_LOCK:
            PERFORMED[0] += 1


class LatencyJob(quebec.BaseClass):  # type: ignore[misc]
    def perform(self, enqueued_at: float) -> None:
        now = time.time()
        if enqueued_at < 0:  # warm-up job
            WARMED_UP.set()
            return
        with LATENCY_LOCK:
            LATENCIES.append(now - enqueued_at)
            if len(LATENCIES) >= LATENCY_EXPECTED[0]:
                LATENCY_TARGET.set()


# --- helpers ------------------------------------------------------------------------------------------------


def emit(result: dict[str, Any]) -> None:
    sys.stdout.write(RESULT_MARK + json.dumps(result) + "\n")
    sys.stdout.flush()


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-pct * len(ordered) // 100))))
    return ordered[rank - 1]


def check_impl(impl: str) -> str | None:
    """Make sure ``--impl`` names the package actually imported; returns an error message or None."""
    native = getattr(getattr(quebec, "quebec", None), "__file__", "") or ""
    is_rust = native.endswith(".so") or native.endswith(".pyd")
    if is_rust != (impl == "rust"):
        return f"--impl {impl} but imported quebec from {quebec.__file__}"
    return None


def make_quebec(args: argparse.Namespace) -> Any:
    kwargs: dict[str, Any] = {"table_name_prefix": args.prefix}
    if args.threads:
        kwargs["worker_threads"] = args.threads
    qc = quebec.Quebec(args.url, **kwargs)
    qc.register_job(NoopJob)
    qc.register_job(LatencyJob)
    return qc


def stop_runtime(qc: Any) -> None:
    """Stop a runtime started with ``qc.run()`` in the main thread.

    The Rust wheel's ``graceful_shutdown()`` ends the whole process once its tasks exit; ours is expected to
    make ``run()`` return. If neither happens, SIGTERM (which both handle) and then a hard exit follow.
    """
    try:
        qc.graceful_shutdown()
    except Exception:
        traceback.print_exc()
    time.sleep(5)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(10)
    sys.stderr.write("workload: runtime did not stop within 15 s; forcing exit\n")
    sys.stderr.flush()
    os._exit(0)


def run_with_runtime(qc: Any, args: argparse.Namespace, measure: Callable[[], dict[str, Any]]) -> None:
    """Run ``qc.run(spawn=[...])`` in the main thread (as a user would) and ``measure`` in a helper thread.

    ``measure`` returns the result; it is emitted, then the runtime is shut down.
    """

    def body() -> None:
        try:
            result = measure()
        except Exception as exc:
            result = {"error": f"{type(exc).__name__}: {exc}"}
            traceback.print_exc()
        emit(result)
        stop_runtime(qc)

    threading.Thread(target=body, name="bench-measure", daemon=True).start()
    try:
        qc.run(spawn=["worker", "dispatcher"])
    except BaseException as exc:
        traceback.print_exc()
        emit({"error": f"qc.run raised {type(exc).__name__}: {exc}"})
        os._exit(1)
    # ours: run() returned after graceful_shutdown(); give the measuring thread no chance to hang us.
    sys.stdout.flush()
    os._exit(0)


# --- scenarios ----------------------------------------------------------------------------------------------


def scenario_enqueue_one(qc: Any, args: argparse.Namespace) -> dict[str, Any]:
    for i in range(10):  # warm the connection pool; not timed
        NoopJob.perform_later(qc, -i)
    n = args.jobs
    t0 = time.perf_counter()
    for i in range(n):
        NoopJob.perform_later(qc, i)
    elapsed = time.perf_counter() - t0
    return {"jobs": n, "seconds": elapsed, "jobs_per_s": n / elapsed}


def scenario_enqueue_bulk(qc: Any, args: argparse.Namespace) -> dict[str, Any]:
    NoopJob.perform_later(qc, -1)  # warm the connection pool; not timed
    n = args.jobs
    t0 = time.perf_counter()
    enqueued = qc.perform_all_later([NoopJob.build(i) for i in range(n)])
    elapsed = time.perf_counter() - t0
    if len(enqueued) != n:
        return {"error": f"perform_all_later returned {len(enqueued)} jobs, expected {n}"}
    return {"jobs": n, "seconds": elapsed, "jobs_per_s": n / elapsed}


def scenario_drain(qc: Any, args: argparse.Namespace) -> None:
    n = args.jobs
    chunk = 10_000
    for start in range(0, n, chunk):
        qc.perform_all_later([NoopJob.build(i) for i in range(start, min(n, start + chunk))])

    poll_cmd = [
        args.poll_python,
        os.path.join(HERE, "poll.py"),
        "--url",
        args.url,
        "--prefix",
        args.prefix,
        "--expect",
        str(n),
        "--timeout",
        str(args.timeout),
        "--interval",
        os.environ.get("BENCH_POLL_INTERVAL", "0.05"),
    ]
    poller = subprocess.Popen(poll_cmd, stdout=subprocess.PIPE, text=True)
    assert poller.stdout is not None
    ready = poller.stdout.readline().split()
    if not ready or ready[0] != "READY":
        emit({"error": f"poller failed to start: {ready!r}"})
        os._exit(1)
    if int(ready[1]) != 0:
        emit({"error": f"{ready[1]} jobs already finished before the worker started"})
        os._exit(1)

    start_box: list[float] = []

    def measure() -> dict[str, Any]:
        assert poller.stdout is not None
        line = poller.stdout.readline().split()  # blocks until the poller is done
        poller.wait()
        if not line:
            return {"error": "poller died"}
        if line[0] == "TIMEOUT":
            return {"error": "timeout", "finished": int(line[2]), "jobs": n}
        if line[0] != "DONE":
            return {"error": f"poller: {' '.join(line)}"}
        elapsed = float(line[1]) - start_box[0]
        with PERFORMED_LOCK:
            performed = PERFORMED[0]
        if performed < n:
            return {"error": f"{line[2]} jobs have finished_at but perform() ran only {performed} times"}
        return {"jobs": n, "threads": args.threads, "seconds": elapsed, "jobs_per_s": n / elapsed}

    start_box.append(time.time())
    run_with_runtime(qc, args, measure)


def scenario_latency(qc: Any, args: argparse.Namespace) -> None:
    n = args.jobs
    LATENCY_EXPECTED[0] = n

    def measure() -> dict[str, Any]:
        time.sleep(0.2)
        LatencyJob.perform_later(qc, -1.0)
        if not WARMED_UP.wait(30):
            return {"error": "warm-up job not performed within 30 s"}
        time.sleep(1.0)  # let the worker go idle again
        if args.scenario == "latency":
            for _ in range(n):
                LatencyJob.perform_later(qc, time.time())
                time.sleep(args.spacing)
        else:
            cmd = [
                sys.executable,
                os.path.abspath(__file__),
                "--impl",
                args.impl,
                "--url",
                args.url,
                "--prefix",
                args.prefix,
                "--scenario",
                "enqueue_paced",
                "--jobs",
                str(n),
                "--spacing",
                str(args.spacing),
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
            if proc.returncode != 0:
                return {"error": f"enqueuer exited {proc.returncode}: {proc.stderr.strip()[-300:]}"}
        if not LATENCY_TARGET.wait(30):
            with LATENCY_LOCK:
                got = len(LATENCIES)
            return {"error": f"timeout: only {got}/{n} jobs performed 30 s after the last enqueue"}
        with LATENCY_LOCK:
            values = list(LATENCIES)
        return {
            "jobs": n,
            "p50_ms": percentile(values, 50) * 1000,
            "p99_ms": percentile(values, 99) * 1000,
            "max_ms": max(values) * 1000,
        }

    run_with_runtime(qc, args, measure)


def scenario_enqueue_paced(qc: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Helper for ``latency_xproc``: enqueue ``--jobs`` latency jobs ``--spacing`` seconds apart."""
    LatencyJob.perform_later(qc, -2.0)  # warm the pool (the warm-up branch ignores negative args)
    for _ in range(args.jobs):
        LatencyJob.perform_later(qc, time.time())
        time.sleep(args.spacing)
    return {"jobs": args.jobs}


# --- main ---------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--impl", required=True, choices=["ours", "rust"], help="checked against the imported quebec")
    p.add_argument("--url", required=True)
    p.add_argument("--prefix", required=True, help="table_name_prefix (fresh per scenario)")
    p.add_argument(
        "--scenario",
        required=True,
        choices=["enqueue_one", "enqueue_bulk", "drain", "latency", "latency_xproc", "enqueue_paced"],
    )
    p.add_argument("--jobs", type=int, default=10_000)
    p.add_argument("--threads", type=int, default=0, help="worker_threads (0 = implementation default)")
    p.add_argument("--spacing", type=float, default=0.02, help="seconds between latency enqueues")
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--poll-python", default=sys.executable, help="interpreter with psycopg/pymysql for poll.py")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger("quebec").setLevel(logging.WARNING)
    mismatch = check_impl(args.impl)
    if mismatch:
        emit({"error": mismatch})
        os._exit(1)
    try:
        qc = make_quebec(args)
        if args.scenario != "enqueue_paced":
            qc.create_tables()
        if args.scenario == "enqueue_one":
            emit(scenario_enqueue_one(qc, args))
        elif args.scenario == "enqueue_bulk":
            emit(scenario_enqueue_bulk(qc, args))
        elif args.scenario == "enqueue_paced":
            emit(scenario_enqueue_paced(qc, args))
        elif args.scenario == "drain":
            scenario_drain(qc, args)
        else:
            scenario_latency(qc, args)
    except Exception as exc:
        traceback.print_exc()
        emit({"error": f"{type(exc).__name__}: {exc}"})
        sys.stdout.flush()
        os._exit(1)
    sys.stdout.flush()
    os._exit(0)  # do not wait for engine threads / pools to wind down


if __name__ == "__main__":
    main()
