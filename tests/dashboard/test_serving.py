"""The ways the dashboard is served: qc.start(control_plane=), QUEBEC_CONTROL_PLANE, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import httpx
import pytest
from dashboard_support import World, world_fixture  # noqa: F401 - fixtures

import quebec
from conftest import eventually


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


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_under_the_fork_supervisor_it_is_a_process_of_its_own(world: World) -> None:
    addr = f"127.0.0.1:{_free_port()}"
    process = world.qc._control_plane_process(addr)
    try:

        def answered() -> Any:
            try:
                return httpx.get(f"http://{addr}/health", timeout=2).json()
            except httpx.HTTPError:
                return None

        body = eventually(answered, within=30, every=0.2)
        assert body["jobs"]["failed"] == 2  # the same tables as the supervisor's
    finally:
        world.qc._stop_control_plane_process(process)
    assert process.poll() is not None


def test_under_the_fork_supervisor_a_refused_bind_stops_run_first(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("USER", "PASSWORD", "TOKEN", "VIEWER_USER", "VIEWER_PASSWORD"):
        monkeypatch.delenv(f"QUEBEC_CONTROL_PLANE_{name}", raising=False)
    monkeypatch.setenv("QUEBEC_SUPERVISOR", "1")
    with pytest.raises(quebec.ConfigError, match="refusing to serve the dashboard on 0.0.0.0"):
        world.qc.run(control_plane="0.0.0.0:0")


def test_its_variables_are_known_settings(world: World, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    env = {"QUEBEC_CONTROL_PLANE_USER": "u", "QUEBEC_CONTROL_PLANE_PASSWORD": "p", "QUEBEC_CONTROL_PLANE_SECRET": "s"}
    from quebec.config.sources import warn_unknown_variables

    with caplog.at_level(logging.WARNING, logger="quebec.config"):
        warn_unknown_variables(env)
    assert [r for r in caplog.records if "is not a Quebec setting" in r.getMessage()] == []
