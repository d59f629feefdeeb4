"""The ways the dashboard is served: qc.start(control_plane=), QUEBEC_CONTROL_PLANE, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import httpx
import pytest
from dashboard_support import World

import quebec


def test_start_serves_the_dashboard_and_stop_ends_it(world: World) -> None:
    qc = world.qc
    qc.start(control_plane="127.0.0.1:0")
    try:
        server = qc._control_plane
        assert server is not None and server.running
        body = httpx.get(server.url + "/health", timeout=10).json()
        assert body["jobs"]["failed"] == 2
    finally:
        qc.stop(timeout=10)
    assert qc._control_plane is None and not server.running


def test_the_environment_variable_names_the_address(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUEBEC_CONTROL_PLANE", "127.0.0.1:0")
    world.qc.start()
    try:
        assert httpx.get(world.qc._control_plane.url + "/queues", timeout=10).status_code == 200
    finally:
        world.qc.stop(timeout=10)


def test_public_names(world: World) -> None:
    app = quebec.ControlPlaneASGI(world.qc)
    assert isinstance(world.qc.asgi_app(), quebec.ControlPlaneASGI) and callable(app)
    with pytest.raises(quebec.ConfigError, match="Starlette only"):
        world.qc.asgi_app(backend="axum")


@pytest.mark.parametrize("backend", ["sqlite"])
def test_cli_refuses_a_public_address_without_credentials(db_url: str, prefix: str, backend: Any) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUEBEC_CONTROL_PLANE")}
    env.update(QUEBEC_DATABASE_URL=db_url, QUEBEC_TABLE_NAME_PREFIX=prefix)
    done = subprocess.run(
        [sys.executable, "-m", "quebec", "dashboard", "--bind", "0.0.0.0:0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("quebec: error:")]
    assert errors == [errors[0]] and "refusing to serve the dashboard on 0.0.0.0 without credentials" in errors[0]
    assert "Traceback" not in done.stderr
