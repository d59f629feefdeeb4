"""Quiet (USR1/TSTP) hands claimed-but-unstarted jobs back at once, so another worker runs them.

Before, a quiet worker kept the jobs it had claimed ahead until they started, one by
one, behind its running jobs: in a rolling restart the draining instance ran them late
instead of the new one running them now.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import quebec
from conftest import eventually
from quebec.engine.signals import Intent
from quebec.types import JobState

started = threading.Event()
release = threading.Event()
ran_on: list[str] = []


class Blocker(quebec.BaseClass):
    def perform(self) -> None:
        started.set()
        release.wait(20)


class Quick(quebec.BaseClass):
    def perform(self, where: str) -> None:
        ran_on.append(where)


def test_going_quiet_hands_back_claimed_jobs_that_have_not_started_and_a_new_worker_runs_them(
    make_qc: Callable[..., Any],
) -> None:
    started.clear()
    release.clear()
    ran_on.clear()
    draining = make_qc()
    draining.register_job(Blocker)
    draining.register_job(Quick)
    blocker = Blocker.perform_later()
    draining.start(spawn=["worker"], threads=1)
    try:
        assert started.wait(10)
        waiting = [Quick.perform_later("any") for _ in range(3)]
        # the busy worker claims one ahead of its free thread (prefetch)
        eventually(lambda: any(draining.get_job(j.id).state == JobState.CLAIMED for j in waiting))
        draining._runtime.intents.put(Intent.QUIET)  # what USR1 does
        eventually(lambda: all(draining.get_job(j.id).state == JobState.READY for j in waiting))
        assert draining.get_job(blocker.id).state == JobState.CLAIMED  # still running there
        fresh = make_qc()
        fresh.register_job(Quick)
        fresh.start(spawn=["worker"])
        eventually(lambda: all(fresh.get_job(j.id).state == JobState.FINISHED for j in waiting))
        assert len(ran_on) == 3
        assert draining.get_job(blocker.id).state == JobState.CLAIMED
    finally:
        release.set()
    eventually(lambda: draining.get_job(blocker.id).state == JobState.FINISHED)
