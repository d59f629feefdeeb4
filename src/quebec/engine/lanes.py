"""ThreadLane: a fixed set of daemon threads that perform jobs.

Not concurrent.futures: its threads are joined at interpreter exit, so one stuck job
would keep a shut-down worker alive forever; and we must know which claimed jobs
have not started yet, to hand them back on shutdown.

`perform` is expected to record an outcome for every job it is given; if it raises
anyway (a bug of ours), `on_crash` records one: no job is left claimed by a live lane.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from quebec.types import ClaimedJob

log = logging.getLogger("quebec.worker")
PREFETCH_SECONDS = 0.05


class ThreadLane:
    def __init__(
        self,
        threads: int,
        perform: Callable[[ClaimedJob], None],
        on_free: Callable[[], None],
        on_crash: Callable[[ClaimedJob, BaseException], None],
        name: str = "worker",
        max_prefetch: int = 0,
    ) -> None:
        self.threads = threads
        self.max_prefetch = max_prefetch
        self._avg_seconds: float | None = None
        self._perform = perform
        self._on_free = on_free
        self._on_crash = on_crash
        self._queue: queue.SimpleQueue[ClaimedJob | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._pending: dict[int, ClaimedJob] = {}
        self._running: dict[int, ClaimedJob] = {}
        self._idle = threading.Condition(self._lock)
        self._threads = [
            threading.Thread(target=self._loop, name=f"quebec-{name}-{i}", daemon=True) for i in range(threads)
        ]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    @property
    def capacity(self) -> int:
        """Threads plus the claimed jobs allowed to wait for one.

        Waiting jobs keep threads busy while the worker claims the next batch, but they
        are held away from other processes: so the lane holds about PREFETCH_SECONDS of
        work, judged by recent job durations. Short jobs get a deep buffer and large
        claims; jobs of a second or more get none.
        """
        avg = self._avg_seconds
        if self.max_prefetch <= 0:
            return self.threads
        if avg is None:
            return self.threads + min(self.threads, self.max_prefetch)
        return self.threads + min(self.max_prefetch, int(self.threads * PREFETCH_SECONDS / max(avg, 1e-5)))

    def free_slots(self) -> int:
        with self._lock:
            return self.capacity - len(self._pending) - len(self._running)

    def wants_claim(self) -> bool:
        """Worth a claim transaction now: half the lane is free, or a thread has nothing
        waiting for it. The worker claims in batches, so a slot freed below that mark
        waits for the next ones rather than costing a claim of one job."""
        with self._lock:
            return self._wants_claim()

    def _wants_claim(self) -> bool:
        busy = len(self._pending) + len(self._running)
        capacity = self.capacity
        if busy >= capacity:
            return False
        return capacity - busy >= max(1, capacity // 2) or len(self._pending) < self.threads - len(self._running)

    def submit(self, job: ClaimedJob) -> None:
        with self._lock:
            self._pending[job.id] = job
        self._queue.put(job)

    def is_idle(self) -> bool:
        with self._lock:
            return not self._pending and not self._running

    def take_pending(self) -> list[ClaimedJob]:
        """Claimed jobs that have not started; they will not start now."""
        with self._lock:
            jobs = list(self._pending.values())
            self._pending.clear()
            self._idle.notify_all()
        return jobs

    def pending(self) -> list[ClaimedJob]:
        with self._lock:
            return list(self._pending.values())

    def running(self) -> list[ClaimedJob]:
        with self._lock:
            return list(self._running.values())

    def wait_idle(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: not self._running and not self._pending, timeout)

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            with self._lock:
                if self._pending.pop(job.id, None) is None:
                    continue  # taken back by take_pending()
                self._running[job.id] = job
            started = time.perf_counter()
            try:
                self._perform(job)
            except BaseException as exc:  # noqa: BLE001 - the executor catches job errors; this is our own bug
                log.exception("lane.perform_crashed job_id=%s: recording it as failed", job.id)
                self._crashed(job, exc)
            finally:
                took = time.perf_counter() - started
                with self._lock:
                    avg = self._avg_seconds
                    self._avg_seconds = took if avg is None else avg * 0.9 + took * 0.1
                    self._running.pop(job.id, None)
                    self._idle.notify_all()
                    # Wake the worker only when it would claim: waking it for every job
                    # that ends costs a thread switch per job and claims nothing.
                    wake = self._wants_claim()
                if wake:
                    self._on_free()

    def _crashed(self, job: ClaimedJob, exc: BaseException) -> None:
        try:
            self._on_crash(job, exc)
        except BaseException:  # noqa: BLE001 - a lane thread must outlive any one job
            log.exception("lane.crash_unrecorded job_id=%s: it stays claimed until this process is pruned", job.id)
