"""Resumption: what the executor does for a Continuable job (quebec/continuable.py).

`attach` gives the instance its Continuation, read from the envelope, before perform runs.
`resumed` decides whether what perform raised enqueues the job again with its progress:
JobInterrupted always does (a graceful shutdown, or an isolated step), an error does when
the job advanced in this execution and its class allows it (`resume_errors_after_advancing`,
within `max_resumptions`). The next run is a new row with the same active_job_id (a Retried
outcome, as a retry is), due now, its envelope carrying `continuation` and `resumptions` at
the top level where the Rust wheel keeps them; `executions` and the failure counters stay as
they were, as the wheel leaves them. Jobs that are not Continuable never come here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from quebec.arguments import Envelope, with_counters
from quebec.clock import Clock
from quebec.continuable import Continuation, InvalidStepError, JobInterrupted
from quebec.engine.outcomes import Retried, run_again
from quebec.job import BaseClass
from quebec.types import ClaimedJob

log = logging.getLogger("quebec.worker")
_LOGGED_MESSAGE = 500  # characters of the error's message in the log line


def attach(instance: BaseClass, job: ClaimedJob, envelope: Envelope, interrupting: Callable[[], bool]) -> Continuation:
    continuation = Continuation.from_envelope(envelope.raw, interrupting, f"job {job.id} ({job.class_name})")
    vars(instance)["_continuation"] = continuation
    return continuation


def resumed(
    cls: type[BaseClass],
    job: ClaimedJob,
    envelope: Envelope,
    continuation: Continuation,
    exc: BaseException,
    clock: Clock,
) -> Retried | None:
    """The next run of an interrupted (or, after progress, failed) job; None: not resumed."""
    if isinstance(exc, JobInterrupted):
        log.info(
            "job.interrupted job_id=%s class=%s resumptions=%d completed=%s: enqueued again to resume (%s)",
            job.id,
            job.class_name,
            continuation.resumptions + 1,
            continuation.completed,
            exc,
        )
    elif _resumes_error(cls, continuation, exc):
        log.warning(
            "job.resumed_after_error job_id=%s class=%s resumptions=%d error=%s: %s; it advanced before the error, "
            "so it resumes from its progress",
            job.id,
            job.class_name,
            continuation.resumptions + 1,
            type(exc).__name__,
            str(exc)[:_LOGGED_MESSAGE],
            exc_info=exc,  # the row keeps no trace of it: the log is where it is seen
        )
    else:
        return None
    arguments = with_counters(
        job.arguments,
        executions=envelope.executions,
        exception_executions=envelope.exception_executions,
        continuation=continuation.state(),
        resumptions=continuation.resumptions + 1,
    )
    return run_again(job, arguments, clock.now())


def _resumes_error(cls: type[BaseClass], continuation: Continuation, exc: BaseException) -> bool:
    if not isinstance(exc, Exception) or isinstance(exc, InvalidStepError):
        return False  # a misused step fails at once: resuming would meet it again
    if not continuation.advanced or not getattr(cls, "resume_errors_after_advancing", True):
        return False
    limit = getattr(cls, "max_resumptions", None)
    if limit is not None and continuation.resumptions >= limit:
        log.warning(
            "job.resume_limit class=%s max_resumptions=%d: not resuming after %s; the error takes its course",
            cls.__qualname__,
            limit,
            type(exc).__name__,
        )
        return False
    return True
