"""QUEBEC_SUPERVISOR=1 with QUEBEC_CONTROL_PLANE: the supervisor serves the dashboard as a
process of its own, and stops it when it stops."""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from integration.integration_support import Procs, stop_gracefully, until, worker_env, write_package

pytestmark = pytest.mark.slow

JOB_PACKAGE = """
import quebec


class Nap(quebec.BaseClass):
    def perform(self):
        pass
"""


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_supervisor_serves_the_dashboard_and_stops_it(
    db_url: str, prefix: str, tmp_path: Path, procs: Procs
) -> None:
    write_package(tmp_path, "forkdash_jobs", JOB_PACKAGE)
    url = f"http://127.0.0.1:{_free_port()}"
    env = worker_env(db_url, prefix, tmp_path, QUEBEC_SUPERVISOR="1", QUEBEC_CONTROL_PLANE=url.removeprefix("http://"))
    supervisor = procs.start([sys.executable, "-m", "quebec", "forkdash_jobs"], env, tmp_path, "supervisor")

    def health() -> Any:
        body = httpx.get(url + "/health", timeout=2).json()
        return body if "Supervisor" in body["processes"] else None

    body = until(health, 60, "the dashboard to show the supervisor", procs, alive=[supervisor])
    assert body["processes"]["Supervisor"]["alive"] == 1
    assert stop_gracefully(supervisor, procs) == 0

    def gone() -> bool:
        try:
            httpx.get(url + "/health", timeout=1)
        except httpx.ConnectError:
            return True
        return False

    until(gone, 30, "the dashboard to stop with the supervisor", procs)
