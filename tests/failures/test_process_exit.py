"""os._exit() inside perform kills the worker process: the one path that leaves a claim behind.

Nothing in the process can record an outcome then; the claim belongs to a dead pid,
and the next worker on the host prunes that process and runs the job again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import eventually
from integration.integration_support import Procs, import_package, start_worker, worker_env
from quebec.store import queries
from quebec.types import JobState

pytestmark = pytest.mark.slow

JOB_PACKAGE = """
import os

import quebec


class ExitsOnce(quebec.BaseClass):
    def perform(self, marker):
        if not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(7)
"""


def test_os_exit_in_perform_kills_the_worker_and_the_next_worker_prunes_it_and_runs_the_job_again(
    db_url: str,
    prefix: str,
    make_qc: Callable[..., Any],
    procs: Procs,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    package = f"exit_jobs_{prefix}"
    module = import_package(tmp_path, package, JOB_PACKAGE, monkeypatch)
    qc = make_qc()
    qc.register_job(module.ExitsOnce)
    marker = tmp_path / "ran-once"
    job = module.ExitsOnce.perform_later(str(marker))

    victim = start_worker(procs, package, worker_env(db_url, prefix, tmp_path, QUEBEC_LOG_LEVEL="WARNING"), tmp_path)
    assert victim.wait(30) == 7, procs.describe()
    assert marker.exists()
    assert qc.get_job(job.id).state == JobState.CLAIMED  # held by a process that is gone

    qc.start(spawn=["worker"])  # its maintenance prunes the dead pid at once and the job runs again
    eventually(lambda: qc.get_job(job.id).state == JobState.FINISHED, within=20)
    qc.stop()
    assert qc.db.read(queries.state_counts).get(JobState.CLAIMED, 0) == 0
    assert qc.db.read(queries.state_counts).get(JobState.FAILED, 0) == 0
