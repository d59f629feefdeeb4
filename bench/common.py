"""What every benchmark workload process shares (standard library only).

Imported by ``workload.py`` (ours and the Rust wheel), the peer workloads (``peer_pgqueuer.py``,
``peer_procrastinate.py``, each in a venv of its own) and ``floor.py``. One result line per process,
on stdout: ``BENCH_RESULT {json}``; ``run.py`` reads the last one.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

RESULT_MARK = "BENCH_RESULT "
HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIOS = ["enqueue_one", "enqueue_bulk", "drain", "latency", "latency_xproc", "enqueue_paced"]
WARMUP_ARG = -1.0  # a latency job carrying a negative timestamp is a warm-up, not a sample
QUIET_AFTER_WARMUP = 1.0  # seconds the worker idles between the warm-up job and the first sample


def job_package(tmp: str, name: str, source: str) -> ModuleType:
    """Write `source` as package `name` under `tmp`, put `tmp` on sys.path and import it: job classes
    that a benchmark's `python -m quebec` child (given tmp on PYTHONPATH) imports under the same name."""
    (Path(tmp) / name).mkdir()
    (Path(tmp) / name / "__init__.py").write_text(textwrap.dedent(source))
    sys.path.insert(0, tmp)
    return importlib.import_module(name)


def emit(result: dict[str, Any]) -> None:
    sys.stdout.write(RESULT_MARK + json.dumps(result) + "\n")
    sys.stdout.flush()


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-pct * len(ordered) // 100))))
    return ordered[rank - 1]


def latency_result(values: list[float], n: int) -> dict[str, Any]:
    """The pickup-latency result from seconds between enqueue and perform."""
    return {
        "jobs": n,
        "p50_ms": percentile(values, 50) * 1000,
        "p99_ms": percentile(values, 99) * 1000,
        "max_ms": max(values) * 1000,
    }


def base_parser(doc: str | None, impls: list[str]) -> argparse.ArgumentParser:
    """The command line every workload script takes (``run.py`` builds it in one place)."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--impl", required=True, choices=impls, help="checked against what the script imported")
    p.add_argument("--url", required=True)
    p.add_argument("--prefix", required=True, help="table prefix / schema name (fresh per scenario)")
    p.add_argument("--scenario", required=True, choices=SCENARIOS)
    p.add_argument("--jobs", type=int, default=10_000)
    p.add_argument("--threads", type=int, default=0, help="worker threads / concurrency (0 = default)")
    p.add_argument("--spacing", type=float, default=0.02, help="seconds between latency enqueues")
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--poll-python", default=sys.executable, help="interpreter with psycopg/pymysql for poll.py")
    return p


def start_poller(args: argparse.Namespace, kind: str, expect: int) -> subprocess.Popen[str]:
    """Start ``poll.py`` (plain SQL on a connection of its own, in its own process) and wait for READY.

    Raises RuntimeError when it cannot connect or when some of the jobs are already done.
    """
    cmd = [
        args.poll_python,
        os.path.join(HERE, "poll.py"),
        "--url",
        args.url,
        "--prefix",
        args.prefix,
        "--kind",
        kind,
        "--expect",
        str(expect),
        "--timeout",
        str(args.timeout),
        "--interval",
        os.environ.get("BENCH_POLL_INTERVAL", "0.05"),
    ]
    poller = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert poller.stdout is not None
    ready = poller.stdout.readline().split()
    if not ready or ready[0] != "READY":
        raise RuntimeError(f"poller failed to start: {ready!r}")
    if int(ready[1]) != 0:
        raise RuntimeError(f"{ready[1]} jobs already done before the worker started")
    return poller


def wait_poller(poller: subprocess.Popen[str], started: float, n: int, performed: Callable[[], int]) -> dict[str, Any]:
    """Block until the poller reports; the drain result (jobs/s from ``started``, a ``time.time()``)."""
    assert poller.stdout is not None
    line = poller.stdout.readline().split()
    poller.wait()
    if not line:
        return {"error": "poller died"}
    if line[0] == "TIMEOUT":
        return {"error": "timeout", "finished": int(line[2]), "jobs": n}
    if line[0] != "DONE":
        return {"error": f"poller: {' '.join(line)}"}
    ran = performed()
    if ran < n:
        return {"error": f"{line[2]} jobs are done in the database but perform() ran only {ran} times"}
    elapsed = float(line[1]) - started
    return {"jobs": n, "seconds": elapsed, "jobs_per_s": n / elapsed}


def enqueuer_cmd(script: str, args: argparse.Namespace) -> list[str]:
    """The command that runs ``enqueue_paced`` in another process (for ``latency_xproc``)."""
    return [
        sys.executable,
        os.path.abspath(script),
        "--impl",
        args.impl,
        "--url",
        args.url,
        "--prefix",
        args.prefix,
        "--scenario",
        "enqueue_paced",
        "--jobs",
        str(args.jobs),
        "--spacing",
        str(args.spacing),
    ]


# --- the scenarios of an asyncio peer (PgQueuer, Procrastinate), written once ---------------------------------


class Peer(Protocol):
    """What a peer workload script adapts its queue to. A job's one argument is a float: its index
    for no-op jobs, ``time.time()`` at enqueue for latency jobs, negative for a warm-up."""

    kind: str  # poll.py --kind

    async def setup(self, install: bool) -> None: ...
    async def enqueue(self, arg: float) -> None: ...
    async def enqueue_many(self, args: list[float]) -> None: ...
    async def start_worker(self, threads: int, perform: Callable[[float], None]) -> None: ...
    async def stop_worker(self) -> None: ...
    async def close(self) -> None: ...


async def run_peer(peer: Peer, args: argparse.Namespace, script: str) -> dict[str, Any]:
    """Run ``args.scenario`` against ``peer``, as ``workload.py`` runs it against ours."""
    n = args.jobs
    await peer.setup(install=args.scenario != "enqueue_paced")
    try:
        if args.scenario == "enqueue_one":
            for i in range(10):  # warm the connection; not timed
                await peer.enqueue(-float(i) - 1)
            t0 = time.perf_counter()
            for i in range(n):
                await peer.enqueue(float(i))
            elapsed = time.perf_counter() - t0
            return {"jobs": n, "seconds": elapsed, "jobs_per_s": n / elapsed}
        if args.scenario == "enqueue_bulk":
            await peer.enqueue(-1.0)
            t0 = time.perf_counter()
            await peer.enqueue_many([float(i) for i in range(n)])
            elapsed = time.perf_counter() - t0
            return {"jobs": n, "seconds": elapsed, "jobs_per_s": n / elapsed}
        if args.scenario == "enqueue_paced":
            await peer.enqueue(2 * WARMUP_ARG)
            for _ in range(n):
                await peer.enqueue(time.time())
                await asyncio.sleep(args.spacing)
            return {"jobs": n}
        if args.scenario == "drain":
            return await _peer_drain(peer, args)
        return await _peer_latency(peer, args, script)
    finally:
        await peer.close()


async def _peer_drain(peer: Peer, args: argparse.Namespace) -> dict[str, Any]:
    n = args.jobs
    for start in range(0, n, 10_000):
        await peer.enqueue_many([float(i) for i in range(start, min(n, start + 10_000))])
    poller = start_poller(args, peer.kind, n)
    performed = [0]

    def perform(arg: float) -> None:
        performed[0] += 1

    started = time.time()
    await peer.start_worker(args.threads or 1, perform)
    result = await asyncio.to_thread(wait_poller, poller, started, n, lambda: performed[0])
    await peer.stop_worker()
    return {**result, "threads": args.threads}


async def _peer_latency(peer: Peer, args: argparse.Namespace, script: str) -> dict[str, Any]:
    n = args.jobs
    values: list[float] = []
    warmed, done = threading.Event(), threading.Event()

    def perform(arg: float) -> None:
        now = time.time()
        if arg < 0:
            warmed.set()
            return
        values.append(now - arg)
        if len(values) >= n:
            done.set()

    await peer.start_worker(args.threads or 1, perform)
    try:
        await asyncio.sleep(0.2)
        await peer.enqueue(WARMUP_ARG)
        if not await asyncio.to_thread(warmed.wait, 30):
            return {"error": "warm-up job not performed within 30 s"}
        await asyncio.sleep(QUIET_AFTER_WARMUP)
        if args.scenario == "latency":
            for _ in range(n):
                await peer.enqueue(time.time())
                await asyncio.sleep(args.spacing)
        else:
            cmd = enqueuer_cmd(script, args)
            proc = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, timeout=args.timeout)
            if proc.returncode != 0:
                return {"error": f"enqueuer exited {proc.returncode}: {proc.stderr.strip()[-300:]}"}
        if not await asyncio.to_thread(done.wait, 30):
            return {"error": f"timeout: only {len(values)}/{n} jobs performed 30 s after the last enqueue"}
        return latency_result(list(values), n)
    finally:
        await peer.stop_worker()


def peer_main(peer: Peer, args: argparse.Namespace, script: str, runner: Callable[[Any], Any] = asyncio.run) -> None:
    """Run the scenario, print its result line, and exit without waiting for stray tasks or threads."""
    try:
        result = runner(run_peer(peer, args, script))
    except Exception as exc:
        traceback.print_exc()
        result = {"error": f"{type(exc).__name__}: {exc}"}
    emit(result)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0 if "error" not in result else 1)
