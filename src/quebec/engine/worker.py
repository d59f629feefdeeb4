"""Worker: claim as many jobs as the lane has free slots, hand them to the lane.

It claims nothing while quiet, and nothing while its completer is stuck (outcomes
unwritten for longer than `stuck_after`): jobs it ran but cannot record would only
pile up, claimed, behind them. It says so in the log every few seconds.

An exclusive job (`exclusive = True`) is held when claimed: the worker stops claiming,
lets the jobs already in its lane finish, runs the exclusive job alone, and claims again
once it is done. The scope is this process; other worker processes go on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from quebec.engine.completer import Completer
from quebec.engine.executor import Executor
from quebec.engine.lanes import ThreadLane
from quebec.engine.outcomes import Failed, Outcome, Released
from quebec.engine.runnable import Runnable
from quebec.outcome import error_info
from quebec.store import Database, claimed, ready
from quebec.store.probe import ReadyProbe
from quebec.types import ClaimedJob, CommitSignal, ErrorInfo, QueueSelector

log = logging.getLogger("quebec.worker")
_CUT_SHORT = ErrorInfo(
    "ProcessPrunedError", "still running when shutdown_timeout ran out; at_most_once jobs are not run again"
)
# With no free slot the worker sleeps until the lane frees one and wakes it; this is
# only the safety net.
_FULL_WAIT = 1.0
# How often an idle worker asks a change watcher (SQLite's data_version) for news: every
# _TICK without a commit signal; with one (inotify on the WAL), only for ALERT_FOR after
# each signal (the signal can come a moment before the commit is visible), else at the
# polling interval.
_TICK = 0.003
ALERT_FOR = 0.02
# Without a watcher or NOTIFY (MySQL), a worker that claimed jobs in the last WARM_FOR
# seconds looks for more every WARM_POLL seconds (every HOT_POLL for the first HOT_FOR:
# jobs come in bursts), with a read that takes no lock; once the queues have been quiet
# that long it looks every polling_interval. Pickup from another process is then a few ms
# while work flows, and an idle worker makes 1/polling_interval cheap reads a second. A
# look costs ~200 µs of CPU on a 2-core VM (the read and the wake-up): ~95 ms per 2 s after
# a claim.
HOT_POLL = 0.002
HOT_FOR = 0.25
WARM_POLL = 0.005
WARM_FOR = 2.0
# Outcomes unwritten for this long mean the completer is stuck (the database is down or
# refuses them): stop claiming, and say so every STUCK_LOG_EVERY seconds.
STUCK_AFTER = 10.0
STUCK_LOG_EVERY = 5.0
_STUCK_IDS_SHOWN = 20


class Worker(Runnable):
    name = "worker"

    def __init__(
        self,
        db: Database,
        *,
        queues: QueueSelector,
        threads: int,
        polling_interval: float,
        executor: Executor,
        completer: Completer,
        process_id: Callable[[], int],
        max_prefetch: int = 256,
        stuck_after: float = STUCK_AFTER,
        hold_back: Callable[[ClaimedJob], Outcome | None] | None = None,
        exclusive: Callable[[str], bool] | None = None,
        limited_queues: tuple[str, ...] = (),
        notified: bool = False,
    ) -> None:
        super().__init__()
        self._notified = notified  # LISTEN/NOTIFY wakes it (PostgreSQL): no fast polling needed
        self._last_claimed = float("-inf")
        self.queues = queues
        self.polling_interval = polling_interval
        self._db = db
        self._executor = executor
        self._completer = completer
        self._process_id = process_id
        # Asked just before each job performs: a rate limit may hold it back (rate_limiter.py).
        self._hold_back = hold_back
        self._is_exclusive = exclusive
        self._limited_queues = limited_queues  # experimental_queue_concurrency: slots taken at claim
        self._exclusive: list[ClaimedJob] = []  # claimed, waiting for the lane to empty
        self._running_alone = False  # an exclusive job is in the lane
        self._quiet = threading.Event()
        # Held while handing claimed jobs to the lane, so go_quiet() cannot miss a claim in flight.
        self._handing = threading.Lock()
        self._stuck_after = stuck_after
        self._stuck_logged_at: float | None = None
        self._reconcile_at: float | None = None
        self._idle = False  # the last claim found fewer jobs than free slots
        self._watcher = db.dialect.change_watcher()
        self._probe = ReadyProbe(db, queues)  # connects on first use
        self._poll_at = 0.0
        self._signal: CommitSignal | None = None  # started in start(): a thread
        self._alert_until = 0.0
        self.lane = ThreadLane(threads, self._perform, self.wake_up, self._crashed, max_prefetch=max_prefetch)

    def start(self) -> None:
        self.lane.start()
        if self._watcher is not None:
            signal = self._db.dialect.commit_signal()
            if signal is not None and signal.start(self._committed_elsewhere):
                self._signal = signal
        super().start()

    def _committed_elsewhere(self) -> None:
        """The commit signal fired: look (data_version, then the probe) without claiming blind."""
        self._alert_until = time.monotonic() + ALERT_FOR
        Runnable.wake_up(self)

    def _tick(self) -> float:
        if self._signal is None or time.monotonic() < self._alert_until:
            return _TICK
        return self.polling_interval

    def wake_up(self) -> None:
        """Something happened (an enqueue here, a NOTIFY, a free thread): claim at once, no probe first."""
        self._idle = False
        super().wake_up()

    @property
    def quiet(self) -> bool:
        return self._quiet.is_set()

    def go_quiet(self) -> list[int]:
        """Stop claiming and hand back the claimed jobs that have not started, so another
        worker runs them now (a rolling restart); jobs already running finish here."""
        with self._handing:
            self._quiet.set()
        self.wake_up()
        released = self.release_unstarted()
        if released:
            log.info("job.released count=%d job_ids=%s: claimed, not started; back to ready", len(released), released)
        return released

    def run_once(self) -> float:
        if self._quiet.is_set():
            return 3600.0
        if self._completer_stuck():
            return _FULL_WAIT
        if self._reconcile_at is not None and time.monotonic() >= self._reconcile_at:
            self.reconcile()
        if self._exclusive or self._running_alone:
            return self._run_alone()
        # Claim in batches: wait for half the lane to be free rather than claiming one
        # job per transaction each time a single slot frees up (the lane wakes us then).
        if not self.lane.wants_claim():
            return _FULL_WAIT
        free = self.lane.free_slots()
        if self._idle and self._db.dialect.single_writer:
            # Idle on SQLite: ask the file whether anyone committed every few ms (a shared-
            # memory read), and look for ready jobs only then, or once per polling interval.
            # Another process's enqueue is picked up in ~5 ms instead of ~polling/2.
            now = time.monotonic()
            if now < self._poll_at and not self._something_changed():
                return min(self._tick(), self._poll_at - now)
            self._poll_at = now + self.polling_interval
            if not self._probe.any_ready():
                return self._idle_wait()
        elif self._idle and not self._probe.any_ready():
            # An idle round that nothing woke (a wake-up clears _idle): a read that takes no
            # lock tells whether to claim, instead of a claim transaction every round.
            return self._idle_wait()
        try:
            jobs = self._db.transact(
                ready.claim,
                queues=self.queues,
                limit=free,
                process_id=self._process_id(),
                limited_queues=self._limited_queues,
            )
        except Exception:
            # The claim may have committed before the connection dropped: look for
            # claims we hold but do not know about, once the database answers again.
            self._reconcile_at = time.monotonic()
            raise
        with self._handing:
            if self._quiet.is_set():  # went quiet while we claimed: these go back at once
                for job in jobs:
                    self._completer.submit(Released(job.id, job.class_name))
                return 3600.0
            for job in jobs:
                if self._is_exclusive is not None and self._is_exclusive(job.class_name):
                    self._exclusive.append(job)
                else:
                    self.lane.submit(job)
        if self._exclusive:
            log.info("job.exclusive job_id=%s: not claiming until it has run alone", self._exclusive[0].id)
            return self._run_alone()
        if jobs:
            self._last_claimed = time.monotonic()
            log.debug("job.claimed count=%d", len(jobs))
        # Fewer jobs than slots: the queues are drained for now, so the next round peeks
        # (or watches) before it claims again.
        self._idle = len(jobs) < free
        if not self._idle:
            return 0.0
        return self._idle_wait()

    def _run_alone(self) -> float:
        """Exclusive jobs: once the lane is empty, hand it the next one, alone; claim again
        when the last one is done."""
        with self._handing:
            if not self.lane.is_idle():
                return _FULL_WAIT  # the lane wakes us when a job ends
            self._running_alone = bool(self._exclusive)
            if self._exclusive:
                self.lane.submit(self._exclusive.pop(0))
                return _FULL_WAIT
        return 0.0

    def _completer_stuck(self) -> bool:
        stuck = self._completer.stuck(self._stuck_after)
        if stuck is None:
            if self._stuck_logged_at is not None:
                log.info("completer.caught_up: claiming again")
                self._stuck_logged_at = None
            return False
        now = time.monotonic()
        if self._stuck_logged_at is None or now - self._stuck_logged_at >= STUCK_LOG_EVERY:
            shown = list(stuck.job_ids[:_STUCK_IDS_SHOWN])
            more = len(stuck.job_ids) - len(shown)
            log.warning(
                "completer.stuck job_ids=%s%s oldest=%.1fs: their outcomes are not written yet; "
                "not claiming until the completer catches up",
                shown,
                f" (+{more} more)" if more else "",
                stuck.oldest,
            )
            self._stuck_logged_at = now
        return True

    def _idle_wait(self) -> float:
        """How long to sleep with nothing to claim: a watcher tick, or the polling interval."""
        if self._watcher is not None:
            return self._tick()
        quiet_for = time.monotonic() - self._last_claimed
        if not self._notified and quiet_for < WARM_FOR:
            return min(HOT_POLL if quiet_for < HOT_FOR else WARM_POLL, self.polling_interval)
        return self.polling_interval

    def _something_changed(self) -> bool:
        """Ask the change watcher; without one (or once it has failed) assume yes."""
        if self._watcher is None:
            return True
        try:
            return self._watcher.changed()
        except Exception as exc:  # noqa: BLE001 - the watcher is a shortcut; polling still works
            log.warning("worker.watcher_failed error=%r: polling every %.3fs instead", exc, self.polling_interval)
            self._watcher.close()
            self._watcher = None
            return True

    def finish(self) -> None:
        if self._watcher is not None:
            self._watcher.close()
        self._probe.close()
        if self._signal is not None:
            self._signal.close()

    def reconcile(self) -> list[int]:
        """Hand back claims this process holds in the database but is not working on."""
        held = self._db.read(claimed.held_by, process_id=self._process_id())
        known = {j.id for j in self.lane.pending()} | {j.id for j in self.lane.running()}
        known |= {j.id for j in self._exclusive}
        unknown = sorted(set(held) - known - self._completer.pending_ids())
        if unknown:
            self._db.transact(claimed.release_many, process_id=self._process_id(), job_ids=unknown)
            log.warning("job.reconciled released=%s: claims whose commit outcome was unknown", unknown)
        self._reconcile_at = None
        return unknown

    def _perform(self, job: ClaimedJob) -> None:
        held = self._hold_back(job) if self._hold_back is not None else None
        self._completer.submit(held if held is not None else self._executor.perform(job))

    def _crashed(self, job: ClaimedJob, exc: BaseException) -> None:
        self._completer.submit(Failed(job.id, error_info(exc), class_name=job.class_name))

    def release_unstarted(self) -> list[int]:
        """Give back claimed jobs that have not started (quiet, shutdown)."""
        with self._handing:
            pending = self.lane.take_pending() + self._exclusive
            self._exclusive = []
        for job in pending:
            self._completer.submit(Released(job.id, job.class_name))
        return [j.id for j in pending]

    def release_running(self) -> list[int]:
        """Give back jobs still running past the shutdown timeout: they will run again,
        except at-most-once jobs, which fail instead (they may have done their work)."""
        running = self.lane.running()
        for job in running:
            if self._executor.at_most_once(job.class_name):
                self._completer.submit(Failed(job.id, _CUT_SHORT, class_name=job.class_name))
            else:
                self._completer.submit(Released(job.id, job.class_name))
        return [j.id for j in running]
