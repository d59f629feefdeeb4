"""Exclusive jobs: the seed's RebuildSearchIndexJob runs alone on its worker process."""

from __future__ import annotations

import threading
import time
from typing import Any

import quebec
from conftest import eventually

_lock = threading.Lock()
runs: dict[str, tuple[float, float]] = {}


def rebuild_index() -> None:
    time.sleep(0.2)


def _record(name: str, started: float) -> None:
    with _lock:
        runs[name] = (started, time.monotonic())


class RebuildSearchIndexJob(quebec.BaseClass):
    """As the seed writes it."""

    exclusive = True

    def perform(self) -> None:
        started = time.monotonic()
        rebuild_index()  # runs alone on this worker
        _record(f"exclusive-{self.id}", started)


class SiblingJob(quebec.BaseClass):
    def perform(self, n: int) -> None:
        started = time.monotonic()
        time.sleep(0.15)
        _record(f"sibling-{n}", started)


def test_an_exclusive_job_runs_alone_and_claiming_resumes_after_it(qc: Any) -> None:
    qc.register_job(RebuildSearchIndexJob)
    qc.register_job(SiblingJob)
    runs.clear()
    qc.perform_all_later(
        [SiblingJob.build(n) for n in range(3)]
        + [RebuildSearchIndexJob.build()]
        + [SiblingJob.build(n) for n in range(3, 8)]
    )
    qc.start(threads=4)
    try:
        eventually(lambda: len(runs) == 9, within=20)
    finally:
        qc.stop()
    ((alone, (start, end)),) = [(k, v) for k, v in runs.items() if k.startswith("exclusive")]
    overlapping = [k for k, (s, e) in runs.items() if k != alone and s < end and e > start]
    assert overlapping == [], f"{overlapping} ran while {alone} should have been alone"
    # the siblings claimed with it ran before it; the ones after it ran in parallel again
    assert any(runs[f"sibling-{n}"][1] <= start for n in range(3))
    later = sorted(runs[f"sibling-{n}"] for n in range(3, 8))
    assert later[1][0] < later[0][1], "after it, jobs ran side by side again"
