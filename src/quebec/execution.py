"""Execution: one job claimed by `qc.drain_one()` / `qc.drain_batch(n)`, to perform in a test.

    job = Greet.perform_later(qc, "Ada")
    execution = qc.drain_one()
    execution.perform()          # runs it as a worker thread would; the outcome is in the tables
    assert qc.get_job(job.id).state == "finished"

perform() returns None whatever the job did (as the wheel): a failure or retry is recorded
in the tables, where a worker would record it. A KeyboardInterrupt (Ctrl-C during a long
test) is recorded as the job's failure and then raised again, so the test run still stops.
"""

from __future__ import annotations

import threading

from quebec.engine.drain import Drain
from quebec.engine.outcomes import Failed
from quebec.types import ClaimedJob


class Execution:
    """A claimed job: `.id`, `.jid` (its active_job_id), `.queue`, `.class_name`, `.job`
    (the claimed row) and `.perform()`."""

    __slots__ = ("_drain", "_lock", "_performed", "job")

    def __init__(self, drain: Drain, job: ClaimedJob) -> None:
        self._drain = drain
        self.job = job
        self._lock = threading.Lock()
        self._performed = False

    @property
    def id(self) -> int:
        return self.job.id

    @property
    def jid(self) -> str | None:
        return self.job.active_job_id

    @property
    def queue(self) -> str:
        return self.job.queue_name

    @property
    def class_name(self) -> str:
        return self.job.class_name

    def __repr__(self) -> str:
        return f"<Execution job {self.id} {self.class_name} queue={self.queue!r}>"

    def perform(self) -> None:
        """Run the job through the worker's executor and write its outcome; once per Execution."""
        with self._lock:
            if self._performed:
                raise RuntimeError(
                    f"the execution of job {self.id} ({self.class_name}) was performed already; "
                    f"call qc.drain_one() for the next job"
                )
            self._performed = True
        outcome = self._drain.perform(self.job)
        if isinstance(outcome, Failed) and outcome.error.exception_class == "KeyboardInterrupt":
            raise KeyboardInterrupt
