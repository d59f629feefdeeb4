"""Soak: one worker, 20,000 jobs, one in ten ending in a random exception, BaseExceptions and
100 KB messages included. Every job must end finished or failed: none claimed, none ready.

The failing jobs are drawn from a seeded generator (printed on failure), so the counts
expected per state and per exception class are known before the worker starts.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select

import quebec
from quebec.store import queries
from quebec.types import JobState

pytestmark = pytest.mark.slow

JOBS = 20_000
FAILING = 0.10
THREADS = 8
BATCH = 2_000
DEADLINE = 90.0  # seconds for the whole drain (typically 5-15)
HUGE = 100_000


class Vanished(BaseException):
    """A BaseException of the user's own."""


def _raise(kind: str) -> None:
    match kind:
        case "ValueError":
            raise ValueError("bad value")
        case "KeyError":
            raise KeyError("missing")
        case "HugeMessage":
            raise RuntimeError("x" * HUGE)
        case "SystemExit":
            raise SystemExit(2)
        case "KeyboardInterrupt":
            raise KeyboardInterrupt
        case "CancelledError":
            raise asyncio.CancelledError
        case "GeneratorExit":
            raise GeneratorExit
        case "Vanished":
            raise Vanished("gone")


KINDS = ("ValueError", "KeyError", "HugeMessage", "SystemExit", "KeyboardInterrupt", "CancelledError", "GeneratorExit")
KINDS += ("Vanished",)
CLASS_OF = {"HugeMessage": "RuntimeError"}


class SoakJob(quebec.BaseClass):
    def perform(self, n: int, kind: str | None) -> None:
        if kind is not None:
            _raise(kind)


@pytest.mark.timeout(180)
def test_twenty_thousand_jobs_with_random_failures_all_end_finished_or_failed(make_qc: Any) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    qc = make_qc()
    qc.register_job(SoakJob)
    kinds = [rng.choice(KINDS) if rng.random() < FAILING else None for _ in range(JOBS)]
    for start in range(0, JOBS, BATCH):
        qc.perform_all_later([SoakJob.build(n, kinds[n]) for n in range(start, min(JOBS, start + BATCH))])
    expected_failed = Counter(CLASS_OF.get(k, k) for k in kinds if k is not None)

    began = time.monotonic()
    qc.start(spawn=["worker"], threads=THREADS)

    def counts() -> dict[JobState, int]:
        return dict(qc.db.read(queries.state_counts))

    try:
        while True:
            now = counts()
            if now.get(JobState.FINISHED, 0) + now.get(JobState.FAILED, 0) == JOBS:
                break
            assert time.monotonic() - began < DEADLINE, f"not drained after {DEADLINE}s: {now} (seed {seed})"
            time.sleep(0.2)
    finally:
        qc.stop()
    drained = time.monotonic() - began
    final = counts()
    assert final.get(JobState.CLAIMED, 0) == 0, f"claims left behind (seed {seed})"
    assert final.get(JobState.READY, 0) == 0 and final.get(JobState.SCHEDULED, 0) == 0
    assert final.get(JobState.FAILED, 0) == sum(expected_failed.values()), f"seed {seed}"
    failed = qc.db.tables.failed_executions
    with qc.db.engine.connect() as conn:
        errors = [json.loads(error) for error in conn.scalars(select(failed.c.error))]
    assert Counter(e["exception_class"] for e in errors) == expected_failed, f"seed {seed}"
    huge = [e for e in errors if e["exception_class"] == "RuntimeError"]
    assert huge and all(e["message"].endswith(f"[cut: {HUGE} characters in all]") for e in huge)
    print(f"\nsoak: {JOBS} jobs ({sum(expected_failed.values())} failing) drained in {drained:.1f}s")
