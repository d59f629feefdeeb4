"""Benchmark the pure-Python ``quebec`` ("ours") against the Rust wheel ``quebec==0.4.2`` ("rust").

Every (backend, implementation, scenario) runs in a fresh subprocess ``<python> bench/workload.py ...`` with
its own random ``table_name_prefix`` (and, for SQLite, its own database file); the tables are dropped with
plain SQL afterwards. Prints one Markdown table and writes ``bench/results/<timestamp>.json``.

    python bench/run.py                                   # all backends, both implementations
    python bench/run.py --backends sqlite --impls rust --quick
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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from dbutil import drop_tables  # noqa: E402

RESULT_MARK = "BENCH_RESULT "
DEFAULT_URLS = {
    "sqlite": "sqlite:///{tmpdir}/bench.db?mode=rwc",  # {tmpdir} is absolute -> 4-slash absolute form
    "postgres": "postgresql://postgres@127.0.0.1:5432/test",
    "mysql": "mysql://root@127.0.0.1:3306/test",
}


@dataclass(frozen=True)
class Metric:
    key: str  # result key in the JSON file
    label: str  # row label in the table
    scenario: str  # workload.py --scenario
    field: str  # field of the workload result shown in the table
    unit: str
    higher_is_better: bool
    threads: int = 0
    jobs_arg: str = "jobs"  # which CLI count applies: jobs | drain_jobs | one_by_one | latency_jobs


METRICS: list[Metric] = [
    Metric("enqueue_one", "enqueue one-by-one", "enqueue_one", "jobs_per_s", "jobs/s", True, 0, "one_by_one"),
    Metric("enqueue_bulk", "bulk enqueue (perform_all_later)", "enqueue_bulk", "jobs_per_s", "jobs/s", True),
    Metric("drain_1", "drain, 1 thread", "drain", "jobs_per_s", "jobs/s", True, 1, "drain_jobs"),
    Metric("drain_8", "drain, 8 threads", "drain", "jobs_per_s", "jobs/s", True, 8, "drain_jobs"),
    Metric("latency", "pickup latency, same process", "latency", "p50_ms", "ms", False, 0, "latency_jobs"),
    Metric(
        "latency_xproc",
        "pickup latency, other process",
        "latency_xproc",
        "p50_ms",
        "ms",
        False,
        0,
        "latency_jobs",
    ),
]
# Latency scenarios yield two rows (p50 and p99); see rows_for().


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backends", default="sqlite,postgres,mysql")
    p.add_argument("--impls", default="ours,rust")
    p.add_argument(
        "--metrics",
        default=",".join(m.key for m in METRICS),
        help="subset of: " + ",".join(m.key for m in METRICS),
    )
    p.add_argument("--jobs", type=int, default=None, help="jobs for bulk enqueue (default 10000)")
    p.add_argument(
        "--drain-jobs",
        type=int,
        default=None,
        help="pre-enqueued jobs for each drain run (default 5000: the Rust wheel drains ~100-350 jobs/s here)",
    )
    p.add_argument("--one-by-one", type=int, default=None, help="jobs for one-by-one enqueue (default 2000)")
    p.add_argument("--latency-jobs", type=int, default=None, help="jobs for pickup latency (default 200)")
    p.add_argument("--spacing", type=float, default=0.02, help="seconds between latency enqueues")
    p.add_argument("--quick", action="store_true", help="2000 bulk/drain jobs, 500 one-by-one, 100 latency jobs")
    p.add_argument("--timeout", type=float, default=300.0, help="per-scenario timeout in seconds")
    p.add_argument("--rust-python", default="/opt/quebec-rs/bin/python")
    p.add_argument("--ours-python", default=sys.executable)
    p.add_argument(
        "--ours-src",
        default=os.path.join(REPO, "src"),
        help="prepended to PYTHONPATH for 'ours' so it runs without pip install ('' to disable)",
    )
    p.add_argument("--url-sqlite", default=DEFAULT_URLS["sqlite"])
    p.add_argument("--url-postgres", default=DEFAULT_URLS["postgres"])
    p.add_argument("--url-mysql", default=DEFAULT_URLS["mysql"])
    p.add_argument("--out", default=os.path.join(HERE, "results"), help="directory for the JSON results")
    p.add_argument("-v", "--verbose", action="store_true", help="print each scenario's stderr tail")
    args = p.parse_args(argv)
    quick = args.quick
    args.jobs = args.jobs or (2000 if quick else 10_000)
    args.drain_jobs = args.drain_jobs or (2000 if quick else 5000)
    args.one_by_one = args.one_by_one or (500 if quick else 2000)
    args.latency_jobs = args.latency_jobs or (100 if quick else 200)
    return args


def impl_env(impl: str, args: argparse.Namespace) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUEBEC_")}
    env.pop("PYTHONPATH", None)
    env.pop("DATABASE_URL", None)
    env["RUST_LOG"] = "warn"  # the wheel logs every job at INFO otherwise; keep both implementations quiet
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


def run_scenario(impl: str, backend: str, metric: Metric, args: argparse.Namespace) -> dict[str, Any]:
    python = args.rust_python if impl == "rust" else args.ours_python
    prefix = "b_" + secrets.token_hex(4)
    tmpdir = tempfile.mkdtemp(prefix="quebec-bench-")
    url = getattr(args, f"url_{backend}").format(tmpdir=tmpdir)
    jobs = getattr(args, metric.jobs_arg)
    cmd = [
        python,
        os.path.join(HERE, "workload.py"),
        "--impl",
        impl,
        "--url",
        url,
        "--prefix",
        prefix,
        "--scenario",
        metric.scenario,
        "--jobs",
        str(jobs),
        "--threads",
        str(metric.threads),
        "--spacing",
        str(args.spacing),
        "--timeout",
        str(args.timeout),
        "--poll-python",
        sys.executable,
    ]
    started = time.monotonic()
    result: dict[str, Any]
    stderr = ""
    try:
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
    except OSError as exc:
        result = {"error": f"cannot start {python}: {exc}"}
    result["wall_s"] = round(time.monotonic() - started, 2)
    result["prefix"] = prefix
    try:
        drop_tables(url, prefix)
    except Exception as exc:
        result["cleanup_error"] = f"{type(exc).__name__}: {exc}"
    shutil.rmtree(tmpdir, ignore_errors=True)
    if args.verbose and stderr.strip():
        print("\n".join(stderr.strip().splitlines()[-15:]), file=sys.stderr)
    return result


def rows_for(metric: Metric) -> list[tuple[str, str, str, bool]]:
    """(row label, result field, unit, higher_is_better) rows shown for a metric."""
    if metric.unit == "ms":
        return [
            (f"{metric.label} p50", "p50_ms", "ms", False),
            (f"{metric.label} p99", "p99_ms", "ms", False),
        ]
    return [(metric.label, metric.field, metric.unit, metric.higher_is_better)]


def fmt_value(result: dict[str, Any] | None, field: str) -> str:
    if result is None:
        return "–"
    if "error" in result:
        msg = str(result["error"]).replace("|", "/").replace("\n", " ")
        return msg if len(msg) <= 60 else msg[:57] + "..."
    value = result.get(field)
    if not isinstance(value, int | float):
        return "?"
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def ratio(ours: dict[str, Any] | None, rust: dict[str, Any] | None, field: str, higher: bool) -> str:
    if not ours or not rust or "error" in ours or "error" in rust:
        return "–"
    a, b = ours.get(field), rust.get(field)
    if not isinstance(a, int | float) or not isinstance(b, int | float) or a <= 0 or b <= 0:
        return "–"
    return f"{(a / b if higher else b / a):.2f}"


def render_table(results: dict[str, dict[str, dict[str, dict[str, Any]]]], metrics: list[Metric]) -> str:
    header = (
        "| backend | metric | unit | ours | rust | ratio (>1 = ours better: ours/rust for throughput, "
        "rust/ours for latency) |"
    )
    lines = [header, "|---|---|---|---:|---:|---:|"]
    for backend, per_impl in results.items():
        for metric in metrics:
            ours = per_impl.get("ours", {}).get(metric.key)
            rust = per_impl.get("rust", {}).get(metric.key)
            for label, field, unit, higher in rows_for(metric):
                lines.append(
                    f"| {backend} | {label} | {unit} | {fmt_value(ours, field)} | {fmt_value(rust, field)} "
                    f"| {ratio(ours, rust, field, higher)} |"
                )
    return "\n".join(lines)


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
        if i not in ("ours", "rust"):
            raise SystemExit(f"unknown implementation {i!r}; choose from ours, rust")
    unknown = wanted - {m.key for m in METRICS}
    if unknown:
        raise SystemExit(f"unknown metrics: {', '.join(sorted(unknown))}")

    started_at = datetime.now(UTC)
    results: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    for backend in backends:
        results[backend] = {}
        for impl in impls:
            results[backend][impl] = {}
            for metric in metrics:
                print(f"[{backend}/{impl}] {metric.key} ...", end=" ", file=sys.stderr, flush=True)
                res = run_scenario(impl, backend, metric, args)
                results[backend][impl][metric.key] = res
                shown = res.get("error") or ", ".join(f"{f}={fmt_value(res, f)}" for _, f, _, _ in rows_for(metric))
                print(f"{shown} ({res['wall_s']} s)", file=sys.stderr, flush=True)

    table = render_table(results, metrics)
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
        },
        "settings": {
            "jobs": args.jobs,
            "drain_jobs": args.drain_jobs,
            "one_by_one": args.one_by_one,
            "latency_jobs": args.latency_jobs,
            "spacing_s": args.spacing,
            "timeout_s": args.timeout,
            "rust_python": args.rust_python,
            "ours_python": args.ours_python,
            "urls": {b: getattr(args, f"url_{b}") for b in backends},
        },
        "results": results,
        "table": table,
    }
    with open(path, "w") as fh:
        json.dump(payload, fh, indent=2)
    print(f"\nresults written to {os.path.relpath(path)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
