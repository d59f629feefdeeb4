"""The seed README's two quick starts, run as written (the script-mode one without the dashboard)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("QUEBEC_") and k != "DATABASE_URL"}


def _finished(db: Path) -> list[tuple[str, str | None]]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        try:
            return conn.execute("SELECT class_name, finished_at FROM solid_queue_jobs").fetchall()
        except sqlite3.OperationalError:
            return []


def test_script_mode_quickstart_processes_fakejob(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py"), "--once"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "Processing job 1: args=(123,), kwargs={'foo': 'bar'}" in result.stderr
    rows = _finished(tmp_path / "demo.db")
    assert [r[0] for r in rows] == ["FakeJob"] and rows[0][1] is not None


def test_module_runner_quickstart_processes_emailjob(tmp_path: Path) -> None:
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "email_job.py").write_text(
        "import quebec\n\n"
        "class EmailJob(quebec.BaseClass):\n"
        '    queue_as = "default"\n\n'
        "    def perform(self, to, subject):\n"
        '        self.logger.info(f"Sending email to {to}: {subject}")\n'
    )
    (tmp_path / "jobs" / "__init__.py").write_text("from .email_job import EmailJob\n")
    env = {**_env(), "DATABASE_URL": "sqlite:///demo.db?mode=rwc"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "quebec", "jobs"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        enqueue = (
            "import sys; sys.path.insert(0, '.'); import quebec; from jobs import EmailJob; "
            "qc = quebec.Quebec('sqlite:///demo.db?mode=rwc'); qc.register_job(EmailJob); "
            "EmailJob.perform_later('ada@example.com', 'Welcome')"
        )
        subprocess.run([sys.executable, "-c", enqueue], cwd=tmp_path, env=_env(), check=True, timeout=60)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(r[1] for r in _finished(tmp_path / "demo.db")):
            assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
            time.sleep(0.05)
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert worker.returncode == 0, err
    assert "Registered EmailJob" in err and "Sending email to ada@example.com: Welcome" in err
