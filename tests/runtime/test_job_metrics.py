"""Per-job metrics (the wheel's SIGUSR2 feature): one CSV row per finished job, per-class summary.

The first test runs on every backend (the rows follow jobs through the database); the others
are about the recorder itself and run on SQLite.
"""

from __future__ import annotations

import csv
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import quebec
from conftest import eventually
from quebec.errors import ConfigError

# The header the wheel (quebec 0.4.2) writes, recorded from a run of it.
WHEEL_HEADER = (
    "ts_ms,pid,tid,jid,class,queue,status,duration_ms,delay_ms,minor_faults,major_faults,process_rss_start_kb,"
    "process_rss_peak_kb,process_rss_end_kb,process_rss_peak_delta_kb,process_rss_single_job,active_jobs"
)
SUMMARY_SHAPE = {
    "count": None,
    "failed": None,
    "duration_ms": {"avg", "max"},
    "minor_faults": {"samples", "sum"},
    "process_rss_peak_delta_kb": {"samples", "avg", "p50", "p95", "max", "max_jid"},
}


def rows(path: str | Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def short(class_name: str) -> str:
    """The class's own name: classes defined in a test are named test_x.<locals>.Name."""
    return class_name.rsplit(".", 1)[-1]


def state(qc: quebec.Quebec, job: Any) -> str:
    return str(qc.get_job(job.id).state)


def shape(stats: dict[str, Any]) -> dict[str, Any]:
    return {key: set(value) if isinstance(value, dict) else None for key, value in stats.items()}


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


@pytest.fixture
def lite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., quebec.Quebec]]:
    """A Quebec on a SQLite file of the test's own (the recorder does not depend on the backend)."""
    monkeypatch.chdir(tmp_path)
    made: list[quebec.Quebec] = []

    def make(**options: Any) -> quebec.Quebec:
        qc = quebec.Quebec(f"sqlite:///{tmp_path}/m.db?mode=rwc", table_name_prefix="t_metrics", **options)
        made.append(qc)
        return qc

    yield make
    for qc in made:
        qc.close()


def test_a_recording_writes_one_row_per_finished_job_with_the_wheels_columns(
    make_qc: Callable[..., quebec.Quebec], tmp_path: Path
) -> None:
    qc = make_qc(worker_threads=1)

    @qc.register_job
    class Ok(quebec.BaseClass):
        def perform(self) -> None:
            pass

    @qc.register_job
    class Bad(quebec.BaseClass):
        def perform(self) -> None:
            raise ValueError("no")

    @qc.register_job
    class Flaky(quebec.BaseClass):
        retry_on = [quebec.RetryStrategy((KeyError,), wait=timedelta(0), attempts=2)]

        def perform(self) -> None:
            raise KeyError("again")

    target = tmp_path / "metrics.csv"
    assert qc.start_job_metrics(target) == str(target)
    assert qc.job_metrics_path == str(target)
    ok, bad = Ok.perform_later(), Bad.perform_later()
    Flaky.perform_later()
    qc.start(spawn=["worker", "dispatcher"])
    # Flaky's retry is a new job row, which fails; every row is offered before its summary counts.
    eventually(lambda: sum(stats["count"] for stats in qc.job_metrics_summary().values()) == 4)
    eventually(lambda: [state(qc, j) for j in (ok, bad)] == ["finished", "failed"])
    assert qc.stop_job_metrics() == {"path": str(target), "rows": 4, "dropped": 0}
    assert qc.job_metrics_path is None

    assert target.read_text(encoding="utf-8").splitlines()[0] == WHEEL_HEADER
    found = rows(target)
    # A retry is `executed`, as in the wheel; only the last run of Flaky failed.
    assert sorted((short(r["class"]), r["status"]) for r in found) == [
        ("Bad", "failed"),
        ("Flaky", "executed"),
        ("Flaky", "failed"),
        ("Ok", "executed"),
    ]
    by_class = {short(r["class"]): r for r in found}
    assert by_class["Ok"]["jid"] == ok.active_job_id and by_class["Ok"]["queue"] == "default"
    assert {r["pid"] for r in found} == {str(os.getpid())}
    assert all(float(r["duration_ms"]) >= 0 and float(r["delay_ms"]) >= 0 for r in found)
    assert all(abs(int(r["ts_ms"]) / 1000 - time.time()) < 60 for r in found)
    # One worker thread: every job ran alone, so its RSS window counts.
    assert {(r["process_rss_single_job"], r["active_jobs"]) for r in found} == {("true", "1")}
    for r in found:
        assert int(r["process_rss_peak_delta_kb"]) == int(r["process_rss_peak_kb"]) - int(r["process_rss_start_kb"])

    summary = {short(name): stats for name, stats in qc.job_metrics_summary().items()}
    assert list(summary) == ["Bad", "Flaky", "Ok"]  # sorted by class name, as the wheel's
    assert all(shape(stats) == SUMMARY_SHAPE for stats in summary.values())
    assert (summary["Flaky"]["count"], summary["Flaky"]["failed"]) == (2, 1)
    assert summary["Ok"]["process_rss_peak_delta_kb"]["samples"] == 1
    assert list(qc.job_metrics_summary(reset=True).values()) == list(summary.values())
    assert qc.job_metrics_summary() == {}


def test_start_stop_and_toggle_as_the_wheel(lite: Callable[..., quebec.Quebec], tmp_path: Path) -> None:
    qc = lite()
    assert qc.stop_job_metrics() is None  # nothing recording
    path = qc.start_job_metrics(tmp_path / "a.csv")
    with pytest.raises(RuntimeError, match="already active"):
        qc.start_job_metrics(tmp_path / "b.csv")
    assert qc.toggle_job_metrics() == {"path": path, "rows": 0, "dropped": 0}
    assert qc.job_metrics_path is None
    assert qc.toggle_job_metrics() is None  # started
    assert qc.job_metrics_path is not None
    assert qc.stop_job_metrics() is not None


def test_the_default_file_goes_to_quebec_job_metrics_dir(
    lite: Callable[..., quebec.Quebec], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUEBEC_JOB_METRICS_DIR", str(tmp_path))
    qc = lite()
    path = Path(qc.start_job_metrics())
    assert path.parent == tmp_path
    assert path.name.startswith(f"quebec-job-metrics-{os.getpid()}-") and path.suffix == ".csv"
    qc.stop_job_metrics()
    assert path.read_text(encoding="utf-8") == WHEEL_HEADER + "\n"


def test_a_path_that_cannot_be_written_is_one_sentence(lite: Callable[..., quebec.Quebec], tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"cannot record job metrics to .*: Is a directory; pass the path of a file"):
        lite().start_job_metrics(tmp_path)


def test_a_bad_limit_is_refused_naming_the_variable(
    lite: Callable[..., quebec.Quebec], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUEBEC_JOB_METRICS_MAX_ROWS", "lots")
    with pytest.raises(ConfigError, match="QUEBEC_JOB_METRICS_MAX_ROWS='lots' must be a whole number"):
        lite().start_job_metrics(tmp_path / "m.csv")


def test_a_recording_stops_itself_at_its_row_limit(
    lite: Callable[..., quebec.Quebec], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUEBEC_JOB_METRICS_MAX_ROWS", "2")
    qc = lite(worker_threads=1)

    @qc.register_job
    class Ok(quebec.BaseClass):
        def perform(self) -> None:
            pass

    path = qc.start_job_metrics(tmp_path / "m.csv")
    jobs = [Ok.perform_later() for _ in range(3)]
    qc.start(spawn=["worker"])
    eventually(lambda: all(state(qc, j) == "finished" for j in jobs))
    assert qc.job_metrics_path is None
    assert qc.stop_job_metrics() is None  # it stopped by itself, as the wheel's
    eventually(lambda: len(rows(path)) == 2)
    assert [stats["count"] for stats in qc.job_metrics_summary().values()] == [2]


def test_a_recording_stops_itself_at_its_time_limit(
    lite: Callable[..., quebec.Quebec], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUEBEC_JOB_METRICS_MAX_SECONDS", "1")
    qc = lite()
    qc.start_job_metrics(tmp_path / "m.csv")
    eventually(lambda: qc.job_metrics_path is None, within=5)


def test_sigusr2_toggles_the_recording_of_a_runtime_started_on_the_main_thread(
    lite: Callable[..., quebec.Quebec],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("QUEBEC_JOB_METRICS_DIR", str(tmp_path))
    qc = lite()
    qc.start(spawn=["worker"])
    with caplog.at_level(logging.INFO, logger="quebec"):
        signal.raise_signal(signal.SIGUSR2)
        eventually(lambda: qc.job_metrics_path)
        signal.raise_signal(signal.SIGUSR2)
        eventually(lambda: qc.job_metrics_path is None)
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.endswith("reason=stopped by signal") for m in messages)
    assert "job_metrics.summary: no jobs finished yet" in messages  # stopping logs the summary


def test_the_rss_peak_of_a_job_that_frees_its_memory_is_still_seen(
    lite: Callable[..., quebec.Quebec], tmp_path: Path
) -> None:
    qc = lite(worker_threads=1)

    @qc.register_job
    class Big(quebec.BaseClass):
        def perform(self) -> None:
            block = bytearray(32 * 1024 * 1024)
            block[::4096] = b"x" * len(block[::4096])  # touch every page: resident
            time.sleep(0.2)  # the job's work; the recorder samples RSS meanwhile
            del block

    path = qc.start_job_metrics(tmp_path / "m.csv")
    job = Big.perform_later()
    qc.start(spawn=["worker"])
    eventually(lambda: state(qc, job) == "finished")
    qc.stop_job_metrics()
    (row,) = rows(path)
    assert int(row["process_rss_peak_delta_kb"]) >= 24 * 1024
    assert int(row["process_rss_end_kb"]) < int(row["process_rss_peak_kb"])
    assert int(row["minor_faults"]) >= 8 * 1024 - 100  # one fault per 4 KiB page touched


def test_overlapping_jobs_are_not_single_job_windows(
    lite: Callable[..., quebec.Quebec], tmp_path: Path, gate: threading.Event
) -> None:
    qc = lite(worker_threads=2)
    started: list[str] = []
    release = {"first": threading.Event(), "second": threading.Event()}

    @qc.register_job
    class Held(quebec.BaseClass):
        def perform(self, name: str) -> None:
            started.append(name)
            release[name].wait(30)

    path = qc.start_job_metrics(tmp_path / "m.csv")
    first, second = Held.perform_later("first"), Held.perform_later("second")
    qc.start(spawn=["worker"])
    eventually(lambda: len(started) == 2)
    release["first"].set()
    eventually(lambda: state(qc, first) == "finished")
    release["second"].set()
    eventually(lambda: state(qc, second) == "finished")
    qc.stop_job_metrics()
    found = {r["jid"]: r for r in rows(path)}
    assert found[first.active_job_id]["active_jobs"] == "2"  # the other was still running
    assert found[second.active_job_id]["active_jobs"] == "1"
    assert {r["process_rss_single_job"] for r in found.values()} == {"false"}
    assert [s["process_rss_peak_delta_kb"]["samples"] for s in qc.job_metrics_summary().values()] == [0]


def test_jobs_run_while_nothing_records_are_not_measured(lite: Callable[..., quebec.Quebec]) -> None:
    qc = lite()

    @qc.register_job
    class Ok(quebec.BaseClass):
        def perform(self) -> None:
            pass

    job = Ok.perform_later()
    qc.start(spawn=["worker"])
    eventually(lambda: state(qc, job) == "finished")
    assert qc.job_metrics_summary() == {}
