"""What became of one claimed job: the values the executor hands the completer to write.

One frozen type per transition out of claimed, each carrying exactly what its write
needs; the completer applies them with a `match` and refuses anything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from quebec.types import ClaimedJob, ErrorInfo, NewJob


@dataclass(frozen=True, slots=True)
class Finished:
    """perform returned: claimed → finished. `result` is what it returned, as JSON (None when
    it returned None, or its class keeps no results)."""

    job_id: int
    class_name: str = ""
    result: str | None = None
    batch_id: int | None = None  # the job's batch (its envelope's), set by BatchMemberExecutor


@dataclass(frozen=True, slots=True)
class Failed:
    """claimed → failed, the error kept in failed_executions.

    `arguments`, when given, replace the job's (the envelope with its failure counters
    raised); None keeps them as they are.
    """

    job_id: int
    error: ErrorInfo
    arguments: str | None = None
    class_name: str = ""
    batch_id: int | None = None  # the job's batch (its envelope's), set by BatchMemberExecutor


@dataclass(frozen=True, slots=True)
class Retried:
    """claimed → finished, and `next_run` enqueued (same active_job_id) for the next attempt."""

    job_id: int
    next_run: NewJob
    class_name: str = ""
    batch_id: int | None = None  # the job's batch (its envelope's), set by BatchMemberExecutor


def run_again(job: ClaimedJob, arguments: str, at: datetime) -> Retried:
    """`job` finished, and enqueued again with `arguments` (its envelope, counters moved on)
    due `at`: a retry after an error, or a Continuable job resumed."""
    next_run = NewJob(
        queue_name=job.queue_name,
        class_name=job.class_name,
        arguments=arguments,
        priority=job.priority,
        active_job_id=job.active_job_id or "",
        scheduled_at=at,
        concurrency_key=job.concurrency_key,
    )
    return Retried(job.id, next_run, job.class_name)


@dataclass(frozen=True, slots=True)
class Discarded:
    """claimed → finished without running again (discard_on, rescue_from, exhausted retries
    with a handler). `error` says why, for the log and observers: as in Solid Queue, a
    discarded job keeps no failed_executions row."""

    job_id: int
    error: ErrorInfo
    class_name: str = ""
    batch_id: int | None = None  # the job's batch (its envelope's), set by BatchMemberExecutor


@dataclass(frozen=True, slots=True)
class Released:
    """claimed → ready: this process will not run the job (shutdown, quiet); it runs again."""

    job_id: int
    class_name: str = ""


@dataclass(frozen=True, slots=True)
class Rescheduled:
    """claimed → scheduled at `run_at` without running: its rate limit said not yet."""

    job_id: int
    run_at: datetime
    class_name: str = ""


Outcome = Finished | Failed | Retried | Discarded | Released | Rescheduled
OUTCOME_TYPES = (Finished, Failed, Retried, Discarded, Released, Rescheduled)
