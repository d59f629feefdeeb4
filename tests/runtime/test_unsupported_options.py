"""Options accepted but not enforced yet warn once at start-up, naming themselves; nothing else does.

Start-up runs on SQLite only: the warnings come from settings, not from the database.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import quebec
from quebec.config import load_settings
from quebec.engine.unsupported import unsupported_options

NO_EFFECT = "has no effect"


@pytest.fixture
def start_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., list[str]]]:
    """Start and stop a runtime with these options; the WARNING lines about unenforced options."""
    monkeypatch.chdir(tmp_path)  # no stray queue.yml
    made: list[quebec.Quebec] = []

    def run(start: dict[str, Any] | None = None, **options: Any) -> list[str]:
        qc = quebec.Quebec(f"sqlite:///{tmp_path}/q.db?mode=rwc", table_name_prefix="t_unsup", **options)
        made.append(qc)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="quebec"):
            qc.start(**{"spawn": ["worker"], **(start or {})})
            qc.stop()
        return [r.getMessage() for r in caplog.records if NO_EFFECT in r.getMessage()]

    yield run
    for qc in made:
        qc.close()


def test_nothing_set_means_no_warning(start_up: Callable[..., list[str]]) -> None:
    assert start_up() == []


def test_the_memory_limit_is_enforced_so_it_and_its_companions_warn_no_more(
    start_up: Callable[..., list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUEBEC_WORKER_MAX_RSS_MB", "512")
    assert start_up(worker_memory_check_interval=2.0) == []


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("worker_memory_check_interval", 2.0),
        ("worker_memory_recycle_confirmations", 5),
        ("worker_memory_graceful_timeout", 60.0),
    ],
)
def test_each_memory_companion_without_the_limit_warns_once(
    start_up: Callable[..., list[str]], option: str, value: object
) -> None:
    (warning,) = start_up(**{option: value})
    assert warning.startswith(f"{option}={value!r} (QUEBEC_{option.upper()}) has no effect: workers are recycled")


@pytest.mark.parametrize(
    ("option", "value"),
    [("cleanup_interval", 3600), ("notify_throttle_interval", 0.5), ("control_plane_sse_interval", 1)],
)
def test_settings_nothing_reads_yet_warn_once(start_up: Callable[..., list[str]], option: str, value: object) -> None:
    found = start_up(**{option: value})
    assert len(found) == 1 and found[0].startswith(f"{option}=") and f"QUEBEC_{option.upper()}" in found[0]


def test_experimental_queue_concurrency_is_enforced_so_it_no_longer_warns(start_up: Callable[..., list[str]]) -> None:
    assert start_up(experimental_queue_concurrency={"mail": 2}) == []


def test_quebec_supervisor_with_qc_start_says_it_runs_threads_here(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUEBEC_SUPERVISOR", "1")
    qc = quebec.Quebec(f"sqlite:///{tmp_path}/q.db?mode=rwc", table_name_prefix="t_unsup")
    with caplog.at_level(logging.WARNING, logger="quebec"):
        qc.start(spawn=["worker"])
        qc.stop()
    qc.close()
    assert [r.getMessage() for r in caplog.records if "QUEBEC_SUPERVISOR" in r.getMessage()] == [
        "supervisor.not_forking: QUEBEC_SUPERVISOR=1 applies to qc.run() and python -m quebec; "
        "qc.start() runs its components as threads of this process"
    ]


def test_quebec_supervisor_off_is_silent(start_up: Callable[..., list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUEBEC_SUPERVISOR", "0")
    assert start_up() == []


def test_processes_above_one_in_queue_yml_warn_per_entry(start_up: Callable[..., list[str]], tmp_path: Path) -> None:
    (tmp_path / "queue.yml").write_text(
        "workers:\n  - queues: '*'\n    processes: 2\n  - queues: mail\ndispatchers:\n  - processes: 3\n",
        encoding="utf-8",
    )
    warnings = start_up()
    assert [w.split(" has no effect here")[0] for w in warnings] == [
        "queue.yml workers[0].processes=2",
        "queue.yml dispatchers[0].processes=3",
    ]


def test_spawning_the_scheduler_no_longer_warns(start_up: Callable[..., list[str]]) -> None:
    assert start_up(start={"spawn": ["worker", "scheduler"]}) == []  # it is built (docs/recurring.md)


def test_spawning_everything_by_default_does_not_warn_about_the_scheduler(start_up: Callable[..., list[str]]) -> None:
    assert start_up(start={"spawn": None}) == []


def test_control_plane_no_longer_warns(start_up: Callable[..., list[str]]) -> None:
    assert start_up(start={"control_plane": "127.0.0.1:0"}) == []  # it is built (docs/dashboard.md)


def test_run_serves_the_control_plane_instead_of_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    qc = quebec.Quebec(f"sqlite:///{tmp_path}/q.db?mode=rwc", table_name_prefix="t_unsup")
    started = threading.Event()
    qc.on_start(started.set)
    with caplog.at_level(logging.WARNING, logger="quebec"):
        runner = threading.Thread(target=qc.run, kwargs={"spawn": ["worker"], "control_plane": "127.0.0.1:0"})
        runner.start()
        assert started.wait(10)
        served = qc._control_plane is not None and qc._control_plane.running  # the dashboard (docs/dashboard.md)
        qc.stop()
        runner.join(10)
    qc.close()
    assert served
    assert [r.getMessage() for r in caplog.records if "control_plane" in r.getMessage()] == []


def test_the_list_is_a_pure_function_of_settings_spawn_and_environment(tmp_path: Path) -> None:
    settings = load_settings(
        {"database_url": "sqlite://", "worker_memory_check_interval": 2}, env={}, cwd=str(tmp_path)
    )
    found = unsupported_options(settings, spawn=["scheduler"], environ={"QUEBEC_SUPERVISOR": "1"})
    assert [sentence.split("=")[0] for sentence in found] == ["worker_memory_check_interval"]
    assert unsupported_options(settings, spawn=None, environ={})[0].startswith("worker_memory_check_interval")
