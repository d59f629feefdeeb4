"""The QuebecError tree. Every message names the thing, the value and the fix."""

from __future__ import annotations


class QuebecError(Exception):
    """Base class of every error Quebec raises on purpose."""


class ConfigError(QuebecError, ValueError):
    """A setting, URL, queue.yml entry or environment variable is invalid."""


class DriverMissing(ConfigError):
    """The database driver for a URL is not installed."""


class InvalidIdentifier(ConfigError):
    """A table prefix or queue name is not a safe identifier."""


class EnqueueError(QuebecError, TypeError):
    """A job could not be enqueued (unserialisable argument, unregistered class...)."""


class SerializationError(EnqueueError):
    """An argument cannot be stored as JSON."""


class UnknownJobClass(QuebecError):
    """A job row names a class that is not registered in this process."""


class MissingTables(ConfigError):
    """The Quebec tables for this prefix have not been created."""


class DatabaseUnavailable(QuebecError, ConnectionError):
    """The database could not be reached, or an operation's outcome is unknown."""


class ProcessPrunedError(QuebecError):
    """The process holding a job's claim died before the job completed."""


class JobTimeoutError(QuebecError, TimeoutError):
    """A job ran longer than its class's `timeout`."""


class AbortEnqueue(Exception):
    """Raise in a job's before_enqueue or around_enqueue to skip the enqueue: nothing is
    inserted and perform_later returns the job with `id` None. Raised by user code, so (as
    in the wheel) it is a plain Exception, not a QuebecError."""


class EnqueueOptionError(EnqueueError, ConfigError):
    """An enqueue option (wait, wait_until, queue, priority) is invalid: both an EnqueueError
    (what enqueue raises) and a ConfigError/ValueError (a bad value)."""


class ArgumentsTooLarge(SerializationError):
    """A job's arguments are larger than the database can store in one row."""


class StoreError(QuebecError):
    """A database statement failed for a reason rerunning cannot cure (a value a column refuses,
    a read-only database); the driver's exception is kept as `.original`."""


class JobNotCompleted(QuebecError):
    """What `job.wait()` raises when the job ended without completing: failed, discarded or
    cancelled. `.job_id` and `.status` say which."""

    def __init__(self, message: str, *, job_id: int, status: str) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.status = status


class JobFailed(JobNotCompleted):
    """The job failed: `.exception_class`, `.message` and `.backtrace` are its error's."""

    def __init__(self, message: str, *, job_id: int, error: dict[str, object]) -> None:
        super().__init__(message, job_id=job_id, status="failed")
        self.exception_class = str(error.get("exception_class", ""))
        self.message = str(error.get("message", ""))
        backtrace = error.get("backtrace")
        self.backtrace = [str(line) for line in backtrace] if isinstance(backtrace, list) else []


class JobDiscarded(JobNotCompleted):
    """The job was discarded (discard_on, rescue_from, or a failed job discarded by hand)."""


class JobCancelled(JobNotCompleted):
    """The job was cancelled before it ran."""


class WaitTimeout(QuebecError, TimeoutError):
    """`job.wait(timeout=…)` ran out of time with the job still not final."""


class UnknownJob(QuebecError, LookupError):
    """No job has this id: it was never enqueued here, or it was cleared with its result."""


class BatchAlreadyFinished(QuebecError):
    """Jobs cannot join a batch that has finished (its callbacks are enqueued already)."""
