"""experimental_queue_concurrency: a `queue:<name>` semaphore taken at claim time, cluster-wide."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import quebec
from conftest import eventually
from quebec.store import semaphores

_lock = threading.Lock()
running: list[int] = []
most: dict[str, int] = {}


class ReportsJob(quebec.BaseClass):
    queue_as = "reports"

    def perform(self, n: int) -> None:
        with _lock:
            running.append(n)
            most["reports"] = max(most.get("reports", 0), len(running))
        time.sleep(0.05)
        with _lock:
            running.remove(n)


class MailJob(quebec.BaseClass):
    queue_as = "mail"

    def perform(self) -> None:
        pass


def test_two_runtimes_never_run_more_than_the_queue_limit_and_other_queues_are_free(
    make_qc: Callable[..., Any],
) -> None:
    qcs = [make_qc(experimental_queue_concurrency={"reports": 2}) for _ in range(2)]
    for qc in qcs:
        qc.register_job(ReportsJob)
        qc.register_job(MailJob)
    running.clear()
    most.clear()
    jobs = qcs[0].perform_all_later([ReportsJob.build(n) for n in range(12)] + [MailJob.build() for _ in range(6)])
    for qc in qcs:
        qc.start(threads=4)
    try:
        eventually(lambda: all(qcs[0].get_job(j.id).state == "finished" for j in jobs), within=30)
    finally:
        for qc in qcs:
            qc.stop()
    assert most["reports"] <= 2
    assert qcs[0].db.read(semaphores.free_slots, keys=["queue:reports"]) == {"queue:reports": 2}
