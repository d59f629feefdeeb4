"""One-shot run: perform what is due now on the worker threads, then return.

`python -m quebec <package> --once` and `qc.drain_due()`, for hosts that run the queue
from cron rather than a long-lived worker. Claims go through the Drain (`qc.drain_batch`:
a Worker row of its own, due scheduled jobs dispatched first, outcomes written as a
worker writes them); jobs run on a ThreadLane of `threads` daemon threads. As a worker
does, it claims in batches, when half the threads are free.

It stops when a claim finds nothing and nothing is running (jobs that ran may have made
others due, so it claims once more after a short claim: a retry without a wait, a job a
concurrency limit held back), or at a bound: `max_jobs` claimed, `max_seconds` passed,
TERM/INT/USR1. A bound only stops claiming: running jobs finish (each within its class's
timeout), unclaimed jobs stay ready, and no claim is left behind. TERM/INT also stops
Continuable jobs at their next checkpoint (enqueued again with their progress). After TERM/INT, jobs
still running when `shutdown_timeout` runs out (or at a second TERM/INT) are handed back
as the worker hands them back: ready again, or failed for at_most_once classes.

Before it claims, it prunes dead processes once, as a worker's maintenance does: on a
host without a long-lived worker nobody else would recover the claims of a one-shot run
that was killed. While jobs run it heartbeats its row, so no one prunes it meanwhile.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

from quebec.config import Settings
from quebec.engine.drain import Drain
from quebec.engine.lanes import ThreadLane
from quebec.engine.maintenance import Maintenance
from quebec.engine.outcomes import Discarded, Failed, Finished, Outcome, Released, Retried
from quebec.engine.signals import Intent, Intents
from quebec.engine.unsupported import unsupported_options
from quebec.registry import Registry
from quebec.store import Database, processes
from quebec.types import ClaimedJob

log = logging.getLogger("quebec.worker")
_TICK = 0.05  # how often the waiting loop looks at signals and the deadline


def max_jobs_bound(value: object) -> int | None:
    """max_jobs= / --max-jobs: a whole number of at least 1, or None for no bound."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"max_jobs={value!r} must be a whole number of at least 1")
    return value


def max_seconds_bound(value: object) -> float | None:
    """max_seconds= / --max-seconds: seconds greater than 0 (at most a day), or None for no bound."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 86400:
        raise ValueError(f"max_seconds={value!r} must be a number of seconds above 0 and at most 86400 (a day)")
    return float(value)


class StopReason(StrEnum):
    DONE = "done"  # nothing due is left
    MAX_JOBS = "max_jobs"
    MAX_SECONDS = "max_seconds"
    SIGNAL = "signal"


@dataclass
class DrainReport:
    """What a one-shot run did: one count per outcome, and why it stopped."""

    finished: int = 0
    failed: int = 0
    retried: int = 0
    discarded: int = 0
    released: int = 0  # handed back to ready (still running at shutdown)
    unrecorded: int = 0  # outcomes that could not be written (the database refused them)
    failed_job_ids: list[int] = field(default_factory=list)
    stopped: StopReason = StopReason.DONE
    seconds: float = 0.0

    @property
    def performed(self) -> int:
        return self.finished + self.failed + self.retried + self.discarded

    @property
    def ok(self) -> bool:
        """No job failed and every outcome was written: the exit status 0 of `--once`."""
        return self.failed == 0 and self.unrecorded == 0

    def as_dict(self) -> dict[str, object]:
        return {
            "performed": self.performed,
            "finished": self.finished,
            "failed": self.failed,
            "retried": self.retried,
            "discarded": self.discarded,
            "released": self.released,
            "unrecorded": self.unrecorded,
            "failed_job_ids": list(self.failed_job_ids),
            "stopped": self.stopped.value,
            "seconds": round(self.seconds, 3),
        }


class OneShot:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        registry: Registry,
        drain: Drain,
        *,
        threads: int,
        max_jobs: int | None = None,
        max_seconds: float | None = None,
        handle_signals: bool = True,
    ) -> None:
        self._db = db
        self._settings = settings
        self._registry = registry
        self._drain = drain
        self._threads = threads
        self._max_jobs = max_jobs_bound(max_jobs)
        self._max_seconds = max_seconds_bound(max_seconds)
        self._handle_signals = handle_signals
        self._intents = Intents()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._report = DrainReport()
        self._lane = ThreadLane(threads, self._perform, self._wake.set, self._crashed, name="drain")
        self._signalled = False  # TERM/INT stopped the claiming: running jobs get shutdown_timeout

    def run(self) -> DrainReport:
        started = time.monotonic()
        for sentence in unsupported_options(self._settings, spawn=None, environ=os.environ):
            log.warning(sentence)
        installed = self._handle_signals and self._intents.install()
        try:
            self._prune_dead()
            self._lane.start()
            try:
                self._report.stopped = self._claim_until_stopped(started)
                self._wait_for_running()
            finally:
                self._lane.close()
        finally:
            self._drain.stopping.clear()  # qc.drain_one() after a stopped drain_due() runs jobs whole
            if installed:
                self._intents.close()
        report = self._report
        report.seconds = time.monotonic() - started
        log.info(
            "drain.done performed=%d finished=%d failed=%d retried=%d discarded=%d released=%d stopped=%s seconds=%.3f",
            report.performed,
            report.finished,
            report.failed,
            report.retried,
            report.discarded,
            report.released,
            report.stopped.value,
            report.seconds,
        )
        return report

    # -- claiming ---------------------------------------------------------------------------
    def _claim_until_stopped(self, started: float) -> StopReason:
        claimed = 0
        short = False  # the last claim found fewer jobs than it asked for
        deadline = None if self._max_seconds is None else started + self._max_seconds
        while True:
            self._wake.clear()  # before looking: a job ending from here on wakes the wait below
            if self._stop_asked():
                return StopReason.SIGNAL
            if self._max_jobs is not None and claimed >= self._max_jobs:
                return StopReason.MAX_JOBS
            if deadline is not None and time.monotonic() >= deadline:
                return StopReason.MAX_SECONDS
            free = self._lane.free_slots()
            busy = free < self._threads
            # Drained for now (short), or too few threads free for a batch: wait for jobs to end.
            if busy and (short or free < max(1, self._threads // 2)):
                self._idle_wait(deadline)
                continue
            wanted = free if self._max_jobs is None else min(free, self._max_jobs - claimed)
            jobs = self._drain.claim(wanted)
            claimed += len(jobs)
            for job in jobs:
                self._lane.submit(job)
            if not jobs and not busy:
                return StopReason.DONE
            short = len(jobs) < wanted

    def _idle_wait(self, deadline: float | None) -> None:
        timeout = _TICK if deadline is None else max(0.0, min(_TICK, deadline - time.monotonic()))
        self._wake.wait(timeout)
        self._heartbeat()

    def _stop_asked(self) -> bool:
        intent = self._intents.get(timeout=0)
        if intent is Intent.QUIT:
            log.warning("drain.quit: exiting at once; the claims are recovered by pruning")
            os._exit(0)
        if intent in (Intent.STOP, Intent.QUIET):
            log.info("drain.stopping: no longer claiming; running jobs finish")
            self._signalled = intent is Intent.STOP
            if self._signalled:
                self._drain.stopping.set()  # Continuable jobs stop at their next checkpoint, to resume
            return True
        return False

    # -- after the last claim -----------------------------------------------------------------
    def _wait_for_running(self) -> None:
        timeout = self._settings.shutdown_timeout
        grace_until = time.monotonic() + timeout if self._signalled else None
        while not self._lane.wait_idle(_TICK):
            self._heartbeat()
            intent = self._intents.get(timeout=0)
            if intent is Intent.QUIT:
                os._exit(0)
            if intent is Intent.STOP:
                if grace_until is not None:
                    log.warning("drain.stop_again: not waiting for running jobs any longer")
                    break
                grace_until = time.monotonic() + timeout
            if grace_until is not None and time.monotonic() >= grace_until:
                break
        if not self._lane.is_idle():
            self._hand_back(timeout)

    def _hand_back(self, timeout: float) -> None:
        """Jobs still running after shutdown_timeout go back, as the worker hands them back:
        the drain's row is removed, and pruning its claims, now, makes them ready again (or
        failed, for at_most_once classes)."""
        self._drain.close()
        stale_before = self._db.clock.now() - timedelta(seconds=self._settings.process_alive_threshold)
        pruned = self._db.transact(processes.prune_dead, stale_before=stale_before, at_most_once=self._at_most_once())
        with self._lock:
            self._report.released += len(pruned.released)
            self._report.failed += len(pruned.failed)
            self._report.failed_job_ids.extend(pruned.failed)
        log.warning(
            "job.released_running count=%d: still running after shutdown_timeout=%.1fs; they will run again",
            len(pruned.released) + len(pruned.failed),
            timeout,
        )

    # -- process row ------------------------------------------------------------------------
    def _prune_dead(self) -> None:
        Maintenance(
            self._db,
            hostname=socket.gethostname(),
            heartbeat_interval=self._settings.process_heartbeat_interval,
            alive_threshold=self._settings.process_alive_threshold,
            process_ids=list,
            on_pruned=lambda missing: None,
            at_most_once=self._at_most_once,
        ).prune()

    def _heartbeat(self) -> None:
        """Refresh the drain's row while jobs run for long: a job longer than
        process_alive_threshold would otherwise see it pruned (the drain beats once per interval)."""
        self._drain.heartbeat()

    def _at_most_once(self) -> list[str]:
        return [c.__qualname__ for c in self._registry.classes() if c.at_most_once]

    # -- lane threads ---------------------------------------------------------------------------
    def _perform(self, job: ClaimedJob) -> None:
        self._record(job, self._drain.perform(job))

    def _crashed(self, job: ClaimedJob, exc: BaseException) -> None:
        # perform ran but its outcome was not written (the database refused it): the claim
        # stays until this process's row is pruned, and the run does not end well.
        log.error("drain.outcome_unrecorded job_id=%s class=%s: %s", job.id, job.class_name, exc)
        with self._lock:
            self._report.unrecorded += 1

    def _record(self, job: ClaimedJob, outcome: Outcome) -> None:
        with self._lock:
            match outcome:
                case Finished():
                    self._report.finished += 1
                case Failed():
                    self._report.failed += 1
                    self._report.failed_job_ids.append(job.id)
                case Retried():
                    self._report.retried += 1
                case Discarded():
                    self._report.discarded += 1
                case Released():
                    self._report.released += 1
