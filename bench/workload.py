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
from common import (
    QUIET_AFTER_WARMUP,
    WARMUP_ARG,
    base_parser,
    emit,
    enqueuer_cmd,
    latency_result,
    start_poller,
    wait_poller,
)

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

    try:
        poller = start_poller(args, "quebec", n)
    except RuntimeError as exc:
        emit({"error": str(exc)})
        os._exit(1)
    start_box: list[float] = []

    def performed() -> int:
        with PERFORMED_LOCK:
            return PERFORMED[0]

    def measure() -> dict[str, Any]:
        return {**wait_poller(poller, start_box[0], n, performed), "threads": args.threads}

    start_box.append(time.time())
    run_with_runtime(qc, args, measure)


def scenario_latency(qc: Any, args: argparse.Namespace) -> None:
    n = args.jobs
    LATENCY_EXPECTED[0] = n

    def measure() -> dict[str, Any]:
        time.sleep(0.2)
        LatencyJob.perform_later(qc, WARMUP_ARG)
        if not WARMED_UP.wait(30):
            return {"error": "warm-up job not performed within 30 s"}
        time.sleep(QUIET_AFTER_WARMUP)  # let the worker go idle again
        if args.scenario == "latency":
            for _ in range(n):
                LatencyJob.perform_later(qc, time.time())
                time.sleep(args.spacing)
        else:
            cmd = enqueuer_cmd(__file__, args)
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
            if proc.returncode != 0:
                return {"error": f"enqueuer exited {proc.returncode}: {proc.stderr.strip()[-300:]}"}
        if not LATENCY_TARGET.wait(30):
            with LATENCY_LOCK:
                got = len(LATENCIES)
            return {"error": f"timeout: only {got}/{n} jobs performed 30 s after the last enqueue"}
        with LATENCY_LOCK:
            values = list(LATENCIES)
        return latency_result(values, n)

    run_with_runtime(qc, args, measure)


def scenario_enqueue_paced(qc: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Helper for ``latency_xproc``: enqueue ``--jobs`` latency jobs ``--spacing`` seconds apart."""
    LatencyJob.perform_later(qc, 2 * WARMUP_ARG)  # warm the pool (the warm-up branch ignores negative args)
    for _ in range(args.jobs):
        LatencyJob.perform_later(qc, time.time())
        time.sleep(args.spacing)
    return {"jobs": args.jobs}


# --- main ---------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return base_parser(__doc__, ["ours", "rust"]).parse_args(argv)


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
