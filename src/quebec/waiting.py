"""What `job.wait()` gives back: a final job's result, or the error that says how it ended."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from quebec import values
from quebec.encryption import Cipher, open_sealed, sealed_token
from quebec.errors import JobCancelled, JobDiscarded, JobFailed, UnknownJob, WaitTimeout
from quebec.store.results import Progress
from quebec.types import JobStatus


def result_of(progress: Progress, cipher: Cipher | None = None) -> Any:
    """perform's return value for a finished job (opened with `cipher` when it was stored
    encrypted); raise for a job that ended otherwise."""
    job_id = progress.job_id
    match progress.status:
        case JobStatus.FINISHED:
            return opened(progress.result, cipher, job_id)
        case JobStatus.FAILED:
            error = progress.error or {}
            raise JobFailed(
                f"job {job_id} failed with {error.get('exception_class', '?')}: {error.get('message', '')}",
                job_id=job_id,
                error=error,
            )
        case JobStatus.DISCARDED:
            raise JobDiscarded(
                f"job {job_id} was discarded (discard_on, rescue_from or by hand), so it has no result",
                job_id=job_id,
                status=JobStatus.DISCARDED.value,
            )
        case JobStatus.CANCELLED:
            raise JobCancelled(
                f"job {job_id} was cancelled before it ran, so it has no result",
                job_id=job_id,
                status=JobStatus.CANCELLED.value,
            )
        case None:
            raise UnknownJob(
                f"no job {job_id} in these tables: it was never enqueued here, or it was cleared with its result; "
                f"check the id and the table prefix"
            )
        case status:
            raise AssertionError(f"result_of() was given job {job_id} still {status}")


def opened(result: Any, cipher: Cipher | None, job_id: int) -> Any:
    """A stored result as perform returned it: a sealed one opened, a plain one as it is."""
    token = sealed_token(result)
    if token is None:
        return result
    return values.loads(open_sealed(token, cipher, f"the result of job {job_id}"))


def timed_out(progress: dict[int, Progress], pending: Sequence[int], timeout: float | None) -> WaitTimeout:
    shown = ", ".join(f"{job_id} ({progress[job_id].status})" for job_id in pending[:10])
    more = f" and {len(pending) - 10} more" if len(pending) > 10 else ""
    return WaitTimeout(
        f"{len(pending)} job(s) still not done after {timeout:g}s: {shown}{more}; wait longer, "
        f"or check that a worker runs their queues"
    )
