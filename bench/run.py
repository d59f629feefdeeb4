"""Benchmark ours against the Rust wheel, PgQueuer, Procrastinate and a raw-SQL floor.

Every (run, backend, implementation, scenario) is a fresh subprocess with its own random table
prefix (PostgreSQL schema for the peers; SQLite file): ours and the wheel run ``workload.py``
(both import as ``quebec``, so never in one interpreter), PgQueuer and Procrastinate run
``peer_<name>.py`` in venvs of their own (``peers.py`` makes them on first use), the floor runs
``floor.py``. Everything is dropped with plain SQL afterwards. Runs are interleaved (run 1 of
everything, then run 2, ...) and each cell is the median of ``--runs``. Prints one Markdown
table per backend and writes ``bench/results/<timestamp>.json``.

    python bench/run.py                                   # everything (~14 min on a busy box)
    python bench/run.py --quick                           # ~1.5 min (one run, smaller counts)
    python bench/run.py --backends postgres --impls ours,pgqueuer --metrics drain_8
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import peers  # noqa: E402
from common import RESULT_MARK  # noqa: E402
from dbutil import drop_schema, drop_tables  # noqa: E402
from matrix import BACKENDS, DEFAULT_URLS, IMPLS, METRICS, Metric  # noqa: E402
from report import fmt_value, render_table, rows_for, summarise  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backends", default=",".join(BACKENDS))
    p.add_argument("--impls", default=",".join(IMPLS), help="subset of: " + ",".join(IMPLS))
    p.add_argument(
        "--metrics",
        default=",".join(m.key for m in METRICS),
        help="subset of: " + ",".join(m.key for m in METRICS),
    )
    p.add_argument("--jobs", type=int, default=None, help="jobs for bulk enqueue (default 10000)")
    p.add_argument("--drain-jobs", type=int, default=None, help="jobs for each drain (default 10000)")
    p.add_argument(
        "--slow-drain-jobs",
        type=int,
        default=None,
        help="jobs for each drain of the wheel and Procrastinate, which drain a few hundred jobs/s (default 2000)",
    )
    p.add_argument("--one-by-one", type=int, default=None, help="jobs for one-by-one enqueue (default 2000)")
    p.add_argument("--latency-jobs", type=int, default=None, help="jobs for pickup latency (default 200)")
    p.add_argument("--spacing", type=float, default=0.02, help="seconds between latency enqueues")
    p.add_argument("--runs", type=int, default=None, help="runs per cell, the median shown (default 3, quick 1)")
    p.add_argument("--rust-runs", type=int, default=1, help="runs per cell for the wheel (slow; default 1)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="one run, no same-process latency; 2000 bulk/drain jobs (slow drains 300), 500 one-by-one, 50 latency",
    )
    p.add_argument("--timeout", type=float, default=300.0, help="per-scenario timeout in seconds")
    p.add_argument("--rust-python", default="/opt/quebec-rs/bin/python")
    p.add_argument("--ours-python", default=sys.executable)
    p.add_argument(
        "--ours-src",
        default=os.path.join(REPO, "src"),
        help="prepended to PYTHONPATH for 'ours' so it runs without pip install ('' to disable)",
    )
    p.add_argument("--venvs", default=peers.DEFAULT_ROOT, help="folder of the peers' venvs (made on first use)")
    p.add_argument("--url-sqlite", default=DEFAULT_URLS["sqlite"])
    p.add_argument("--url-postgres", default=DEFAULT_URLS["postgres"])
    p.add_argument("--url-mysql", default=DEFAULT_URLS["mysql"])
    p.add_argument("--out", default=os.path.join(HERE, "results"), help="directory for the JSON results")
    p.add_argument("-v", "--verbose", action="store_true", help="print each scenario's stderr tail")
    args = p.parse_args(argv)
    quick = args.quick
    if quick and args.metrics == p.get_default("metrics"):
        args.metrics = ",".join(m.key for m in METRICS if m.key != "latency")
    args.jobs = args.jobs or (2000 if quick else 10_000)
    args.drain_jobs = args.drain_jobs or (2000 if quick else 10_000)
    args.slow_drain_jobs = args.slow_drain_jobs or (300 if quick else 2000)
    args.one_by_one = args.one_by_one or (500 if quick else 2000)
    args.latency_jobs = args.latency_jobs or (50 if quick else 200)
    args.runs = args.runs or (1 if quick else 3)
    return args


def interpreter(impl: str, args: argparse.Namespace) -> str:
    if impl == "ours":
        return str(args.ours_python)
    if impl == "rust":
        return str(args.rust_python)
    if impl in peers.PEERS:
        return peers.venv_python(impl, args.venvs)
    return sys.executable  # the floor: the harness has the drivers


def script_of(impl: str) -> str:
    if impl in peers.PEERS:
        return peers.script(impl)
    return os.path.join(HERE, "floor.py" if impl == "floor" else "workload.py")


def impl_env(impl: str, args: argparse.Namespace) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QUEBEC_", "PGQUEUER_"))}
    env.pop("PYTHONPATH", None)
    env.pop("DATABASE_URL", None)
    env["RUST_LOG"] = "warn"  # the wheel logs every job at INFO otherwise; keep every implementation quiet
    env["QUEBEC_LOG_LEVEL"] = "WARNING"
    env["PYTHONUNBUFFERED"] = "1"
    if impl == "ours" and args.ours_src:
        env["PYTHONPATH"] = args.ours_src
    return env


def run_isolated(cmd: list[str], env: dict[str, str], cwd: str, timeout: float) -> tuple[str, str, int | None]:
    """Run ``cmd`` in its own session; on timeout kill its whole process group (poller, enqueuer included).

    Returns (stdout, stderr, returncode), returncode None meaning it was killed after ``timeout`` seconds.
    """
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
        return stdout, stderr, proc.returncode
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        return stdout, stderr, None


def jobs_for(impl: str, metric: Metric, args: argparse.Namespace) -> int:
    if metric.jobs_arg == "drain_jobs" and IMPLS[impl].slow_drain:
        return int(args.slow_drain_jobs)
    return int(getattr(args, metric.jobs_arg))


def run_scenario(impl: str, backend: str, metric: Metric, args: argparse.Namespace) -> dict[str, Any]:
    prefix = "b_" + secrets.token_hex(4)
    tmpdir = tempfile.mkdtemp(prefix="quebec-bench-")
    url = getattr(args, f"url_{backend}").format(tmpdir=tmpdir)
    started = time.monotonic()
    result: dict[str, Any]
    stderr = ""
    try:
        python = interpreter(impl, args)
        cmd = [
            python,
            script_of(impl),
            "--impl",
            impl,
            "--url",
            url,
            "--prefix",
            prefix,
            "--scenario",
            metric.scenario,
            "--jobs",
            str(jobs_for(impl, metric, args)),
            "--threads",
            str(metric.threads),
            "--spacing",
            str(args.spacing),
            "--timeout",
            str(args.timeout),
            "--poll-python",
            sys.executable,
        ]
        stdout, stderr, returncode = run_isolated(cmd, impl_env(impl, args), tmpdir, args.timeout + 30)
        lines = [ln for ln in stdout.splitlines() if ln.startswith(RESULT_MARK)]
        if lines:
            result = json.loads(lines[-1][len(RESULT_MARK) :])
        elif returncode is None:
            result = {"error": "timeout"}
        else:
            tail = (stderr.strip().splitlines() or [f"exit code {returncode}, no output"])[-1]
            result = {"error": f"exit {returncode}: {tail}"}
        if returncode is None:
            result["killed_after_timeout"] = True
    except (OSError, subprocess.CalledProcessError) as exc:
        result = {"error": f"cannot start {impl}: {exc}"}
    result["wall_s"] = round(time.monotonic() - started, 2)
    result["prefix"] = prefix
    try:
        if impl in peers.PEERS:
            drop_schema(url, prefix)
        else:
            drop_tables(url, prefix)
    except Exception as exc:
        result["cleanup_error"] = f"{type(exc).__name__}: {exc}"
    shutil.rmtree(tmpdir, ignore_errors=True)
    if args.verbose and stderr.strip():
        print("\n".join(stderr.strip().splitlines()[-15:]), file=sys.stderr)
    return result


def version_labels(impls: list[str], args: argparse.Namespace) -> dict[str, str]:
    labels = {i: IMPLS[i].label for i in impls}
    for impl, dist in (("rust", "quebec"), *((p, p) for p in peers.PEERS)):
        if impl not in impls:
            continue
        try:
            labels[impl] += " " + peers.version(dist, interpreter(impl, args))
        except (OSError, subprocess.CalledProcessError) as exc:
            print(f"[{impl}] no interpreter: {exc}", file=sys.stderr)
    return labels


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    impls = [i.strip() for i in args.impls.split(",") if i.strip()]
    wanted = {m.strip() for m in args.metrics.split(",") if m.strip()}
    metrics = [m for m in METRICS if m.key in wanted]
    for b in backends:
        if b not in DEFAULT_URLS:
            raise SystemExit(f"unknown backend {b!r}; choose from {', '.join(DEFAULT_URLS)}")
    for i in impls:
        if i not in IMPLS:
            raise SystemExit(f"unknown implementation {i!r}; choose from {', '.join(IMPLS)}")
    unknown = wanted - {m.key for m in METRICS}
    if unknown:
        raise SystemExit(f"unknown metrics: {', '.join(sorted(unknown))}")

    started_at = datetime.now(UTC)
    load_at_start = os.getloadavg()
    labels = version_labels(impls, args)  # makes missing peer venvs now, before any timing
    raw: dict[str, dict[str, dict[str, list[dict[str, Any]]]]] = {b: {i: {} for i in impls} for b in backends}
    for run in range(args.runs):
        # Each run starts one implementation later: a scenario right after another's writes
        # pays for them (checkpoints, autovacuum; ~20 % on a bulk enqueue here), so no
        # implementation always comes second.
        shift = run % len(impls)
        for backend in backends:
            for impl in impls[shift:] + impls[:shift]:
                spec = IMPLS[impl]
                if backend not in spec.backends or run >= (args.rust_runs if impl == "rust" else args.runs):
                    continue
                for metric in metrics:
                    if metric.key not in spec.metrics:
                        continue
                    tag = f"[run {run + 1}/{args.runs} {backend}/{impl}] {metric.key}"
                    print(f"{tag} ...", end=" ", file=sys.stderr, flush=True)
                    res = run_scenario(impl, backend, metric, args)
                    raw[backend][impl].setdefault(metric.key, []).append(res)
                    shown = res.get("error") or ", ".join(f"{f}={fmt_value(res, f)}" for _, f, _, _ in rows_for(metric))
                    print(f"{shown} ({res['wall_s']} s)", file=sys.stderr, flush=True)

    cells = {b: {i: {k: summarise(v) for k, v in per.items()} for i, per in raw[b].items()} for b in backends}
    tables = [render_table(b, cells[b], impls, metrics, labels) for b in backends]
    load = f"load average (1 min) {load_at_start[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    table = "\n\n".join(tables) + f"\n\n{os.cpu_count()} CPUs, {load}."
    print(table)
    os.makedirs(args.out, exist_ok=True)
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
    path = os.path.join(args.out, f"{stamp}.json")
    payload = {
        "started_at": started_at.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_at_start": load_at_start,
            "loadavg_at_end": os.getloadavg(),
        },
        "settings": {
            "jobs": args.jobs,
            "drain_jobs": args.drain_jobs,
            "slow_drain_jobs": args.slow_drain_jobs,
            "one_by_one": args.one_by_one,
            "latency_jobs": args.latency_jobs,
            "spacing_s": args.spacing,
            "runs": args.runs,
            "rust_runs": args.rust_runs,
            "timeout_s": args.timeout,
            "rust_python": args.rust_python,
            "ours_python": args.ours_python,
            "venvs": args.venvs,
            "labels": labels,
            "urls": {b: getattr(args, f"url_{b}") for b in backends},
        },
        "results": cells,
        "runs": raw,
        "table": table,
    }
    with open(path, "w") as fh:
        json.dump(payload, fh, indent=2)
    print(f"\nresults written to {os.path.relpath(path)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
