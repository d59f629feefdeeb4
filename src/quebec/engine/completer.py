"""Completer: writes job outcomes back, successes in batches.

Successes are grouped: the completer takes everything that has arrived since its
last flush and finishes it with one `finish_many`. Under load that makes large
batches; when idle it flushes each job at once. Other outcomes get a transaction
each. While the database is unreachable outcomes are held and retried with capped
backoff, never dropped; a success not yet flushed when the process is killed runs
again (the documented price of batching).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from quebec.store import Database, claimed
from quebec.types import ErrorInfo, NewJob

log = logging.getLogger("quebec.completer")
_MAX_BATCH = 1000

Kind = Literal["finish", "fail", "retry", "discard", "release"]


@dataclass(frozen=True, slots=True)
class Completion:
    kind: Kind
    job_id: int
    class_name: str = ""
    error: ErrorInfo | None = None
    arguments: str | None = None
    next_run: NewJob | None = None


class Completer:
    def __init__(
        self,
        db: Database,
        process_id: Callable[[], int],
        *,
        preserve_finished: bool,
        on_applied: Callable[[list[Completion]], None] | None = None,
    ) -> None:
        self._db = db
        self._process_id = process_id
        self._preserve = preserve_finished
        self._on_applied = on_applied
        self._queue: queue.SimpleQueue[Completion | None] = queue.SimpleQueue()
        self._unflushed = 0
        self._pending_ids: set[int] = set()
        self._lock = threading.Lock()
        self._drained = threading.Condition(self._lock)
        self._thread = threading.Thread(target=self._loop, name="quebec-completer", daemon=True)
        self._thread.start()

    def pending_ids(self) -> set[int]:
        """Jobs whose outcome is submitted but not yet written."""
        with self._lock:
            return set(self._pending_ids)

    def submit(self, completion: Completion) -> None:
        with self._lock:
            self._unflushed += 1
            self._pending_ids.add(completion.job_id)
        self._queue.put(completion)

    def flush(self, timeout: float) -> bool:
        """Wait until everything submitted so far is written; False on timeout."""
        with self._drained:
            return self._drained.wait_for(lambda: self._unflushed == 0, timeout)

    def close(self, timeout: float) -> bool:
        done = self.flush(timeout)
        self._queue.put(None)
        return done

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < _MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._apply_until_done(batch)
                    return
                batch.append(item)
            self._apply_until_done(batch)

    def _apply_until_done(self, batch: list[Completion]) -> None:
        attempt = 0
        applied = list(batch)
        while True:
            try:
                self._apply(batch)
                break
            except Exception:
                attempt += 1
                delay = min(5.0, 0.05 * 2 ** min(attempt, 7))
                log.warning(
                    "completer.retry jobs=%d attempt=%d retry_in=%.2fs",
                    len(batch),
                    attempt,
                    delay,
                    exc_info=attempt == 1,
                )
                time.sleep(delay)
        if self._on_applied is not None:
            self._on_applied(applied)
        with self._drained:
            self._unflushed -= len(applied)
            self._pending_ids.difference_update(c.job_id for c in applied)
            self._drained.notify_all()

    def _apply(self, batch: list[Completion]) -> None:
        """Write the batch; what is written is removed from it, so a retry after a
        partial failure does not write anything twice."""
        pid = self._process_id()
        done = [c.job_id for c in batch if c.kind == "finish"]
        if done:
            result = self._db.transact(claimed.finish_many, process_id=pid, job_ids=done, preserve=self._preserve)
            if result.lost:
                log.warning(
                    "job.claim_lost job_ids=%s: this process no longer held them (pruned?); they run again elsewhere",
                    list(result.lost),
                )
            batch[:] = [c for c in batch if c.kind != "finish"]
        releases = [c.job_id for c in batch if c.kind == "release"]
        if releases:
            self._db.transact(claimed.release_many, process_id=pid, job_ids=releases)
            batch[:] = [c for c in batch if c.kind != "release"]
        while batch:
            c = batch[0]
            if c.kind == "fail" and c.error is not None:
                self._db.transact(claimed.fail, process_id=pid, job_id=c.job_id, error=c.error, arguments=c.arguments)
            elif c.kind == "retry" and c.next_run is not None:
                self._db.transact(claimed.retry, process_id=pid, job_id=c.job_id, next_run=c.next_run)
            elif c.kind == "discard":
                self._db.transact(claimed.discard, process_id=pid, job_id=c.job_id)
            batch.pop(0)
