"""The same job metrics script under the Rust wheel and under ours: same header, statuses, summary shape.

Runs the wheel through the interpreter in QUEBEC_RS_PYTHON (skipped without it), on SQLite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

RS_PYTHON = os.environ.get("QUEBEC_RS_PYTHON", "")
requires_wheel = pytest.mark.skipif(
    not (RS_PYTHON and os.path.isfile(RS_PYTHON) and os.access(RS_PYTHON, os.X_OK)),
    reason="QUEBEC_RS_PYTHON does not name the python of a venv with quebec==0.4.2",
)

# Written against the wheel's API only; it prints what it saw as one JSON line.
SCRIPT = textwrap.dedent(
    """
    import csv, json, sys, time
    from datetime import timedelta
    import quebec

    qc = quebec.Quebec(sys.argv[1], table_name_prefix="t_wheel_metrics", worker_threads=1)

    class Ok(quebec.BaseClass):
        def perform(self):
            pass

    class Bad(quebec.BaseClass):
        def perform(self):
            raise ValueError("no")

    class Flaky(quebec.BaseClass):
        retry_on = [quebec.RetryStrategy((KeyError,), wait=timedelta(0), attempts=2, handler=None)]

        def perform(self):
            raise KeyError("again")

    for cls in (Ok, Bad, Flaky):
        qc.register_job_class(cls)
    qc.create_tables()
    path = qc.start_job_metrics(sys.argv[2])
    again = None
    try:
        qc.start_job_metrics(sys.argv[2] + ".2")
    except RuntimeError:
        again = "RuntimeError"
    qc.start()
    for cls in (Ok, Bad, Flaky):
        cls.perform_later(qc)
    deadline = time.time() + 20
    while time.time() < deadline and sum(s["count"] for s in qc.job_metrics_summary().values()) < 4:
        time.sleep(0.05)
    stopped = qc.stop_job_metrics()
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
        f.seek(0)
        header = f.readline().strip()
    summary = qc.job_metrics_summary()
    shape = {name: {k: sorted(v) if isinstance(v, dict) else None for k, v in stats.items()}
             for name, stats in summary.items()}
    print(json.dumps({
        "again": again,
        "header": header,
        "statuses": sorted([r["class"], r["status"]] for r in rows),
        "stopped_keys": sorted(stopped),
        "rows": stopped["rows"],
        "stop_idle": qc.stop_job_metrics(),
        "classes": list(summary),
        "counts": {name: [s["count"], s["failed"]] for name, s in summary.items()},
        "shape": shape,
        "ping": qc.ping(),
        "threads": qc.worker_threads,
    }), flush=True)
    qc.graceful_shutdown()
    """
)


def run(python: str, tmp_path: Path, name: str) -> dict[str, Any]:
    script = tmp_path / "metrics_script.py"
    script.write_text(SCRIPT, encoding="utf-8")
    folder = tmp_path / name
    folder.mkdir()
    env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", "") if name == "ours" else ""}
    done = subprocess.run(
        [python, str(script), f"sqlite:///{folder}/q.db?mode=rwc", str(folder / "m.csv")],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"{name} printed no result (exit {done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return dict(json.loads(lines[-1]))


@requires_wheel
def test_a_script_written_for_the_wheel_sees_the_same_metrics_on_ours(tmp_path: Path) -> None:
    wheel = run(RS_PYTHON, tmp_path, "wheel")
    ours = run(sys.executable, tmp_path, "ours")
    assert wheel["header"].startswith("ts_ms,pid,tid,jid,class")
    assert wheel["statuses"] == [["Bad", "failed"], ["Flaky", "executed"], ["Flaky", "failed"], ["Ok", "executed"]]
    assert ours == wheel
