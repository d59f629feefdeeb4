"""Waiter: block until jobs end, without polling where the database can tell us.

A job that ends in this process beats the Database's pulse after its transaction commits,
waking the waiter at once. On PostgreSQL every transaction that ends jobs also sends
NOTIFY `<channel>_done`; the waiter's listener turns it into a beat, so a job ending in
another process wakes it too, and the tables are then read only when something ended
(a safety read every SAFETY_POLL seconds covers a lost connection). Elsewhere, or while
the listener is not connected, the waiter reads the tables with backoff, from POLL_FIRST
up to POLL_MAX seconds.

Each read covers every job still awaited, in two statements; a retried job is followed to
its next attempt (job_results.next_job_id) until an attempt is final.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from quebec.store import Database, results
from quebec.store.results import Progress

POLL_FIRST = 0.005
POLL_MAX = 0.5
SAFETY_POLL = 5.0
_LISTEN_READY = 2.0  # how long the first wait gives the listener to connect before polling


class Waiter:
    def __init__(self, db: Database, *, use_listen: bool) -> None:
        self._db = db
        self._use_listen = use_listen and db.dialect.supports_listen
        self._lock = threading.Lock()
        self._listener: Any = None
        self.reads = 0  # table reads so far (the benchmark counts them per wait)

    def wait(self, job_ids: Sequence[int], timeout: float | None) -> tuple[dict[int, Progress], list[int]]:
        """Wait until every job is final (or unknown), or `timeout` seconds pass.

        Returns the last progress of each job asked for (after its retries) and the ids of
        those still not final when the time ran out.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        listener = self._listening()
        pulse = self._db.ended
        current = {job_id: job_id for job_id in job_ids}  # asked → attempt to read
        seen: dict[int, Progress] = {}
        pause = POLL_FIRST
        while True:
            beats = pulse.beats
            pending = self._read(current, seen)
            if not pending:
                return seen, []
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return seen, sorted(pending)
            notified = listener is not None and listener.listening.is_set()
            pause = SAFETY_POLL if notified else min(POLL_MAX, pause * 1.5)
            wait_for = pause if deadline is None else min(pause, deadline - now)
            pulse.wait(beats, wait_for)

    def _read(self, current: dict[int, int], seen: dict[int, Progress]) -> set[int]:
        """Read the jobs still awaited; follow retries; return the ids still not final."""
        pending = {asked for asked, at in current.items() if not _final(seen.get(asked))}
        while pending:
            attempts = {current[asked] for asked in pending}
            found = self._db.read(results.progress, job_ids=sorted(attempts))
            self.reads += 1
            hopped = False
            for asked in pending:
                progress = found[current[asked]]
                seen[asked] = progress
                if progress.next_job_id is not None:
                    current[asked] = progress.next_job_id
                    hopped = True
            pending = {asked for asked in pending if not _final(seen[asked])}
            if not hopped:
                break
        return pending

    def _listening(self) -> Any:
        if not self._use_listen:
            return None
        with self._lock:
            if self._listener is None:
                db = self._db
                self._listener = db.dialect.listener(db.channel + results.DONE_SUFFIX, lambda _: db.ended.beat())
                self._listener.start()
                self._listener.listening.wait(_LISTEN_READY)
            return self._listener

    def close(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()


def _final(progress: Progress | None) -> bool:
    return progress is not None and (progress.status is None or progress.status.is_final)
