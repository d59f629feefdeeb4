"""Quebec: a background job queue that needs nothing but your SQL database."""

from quebec import context
from quebec.app import Quebec
from quebec.batch_context import current_batch_id
from quebec.batches import Batch
from quebec.context import JobContext
from quebec.continuable import Continuable, InvalidStepError, JobInterrupted, StepContext
from quebec.errors import (
    AbortEnqueue,
    BatchAlreadyFinished,
    ConfigError,
    DatabaseUnavailable,
    EnqueueError,
    JobCancelled,
    JobDiscarded,
    JobFailed,
    JobNotCompleted,
    QuebecError,
    SerializationError,
    UnknownJob,
    UnknownJobClass,
    WaitTimeout,
)
from quebec.events import JobEvent, JobEventKind
from quebec.execution import Execution
from quebec.flow_options import ConcurrencyStrategy
from quebec.function_jobs import FunctionJob
from quebec.job import ActiveJob, BaseClass, ConcurrencyConflict, JobBuilder, JobDescriptor, RateLimitConflict
from quebec.retry import DiscardStrategy, RescueStrategy, RetryStrategy
from quebec.schedules import Interval, NextRun
from quebec.types import JobStatus

__version__ = "0.1.0"

__all__ = [
    "AbortEnqueue",
    "ActiveJob",
    "BaseClass",
    "Batch",
    "BatchAlreadyFinished",
    "ConcurrencyConflict",
    "ConcurrencyStrategy",
    "Continuable",
    "ControlPlaneASGI",
    "ConfigError",
    "DatabaseUnavailable",
    "DiscardStrategy",
    "EnqueueError",
    "Execution",
    "Interval",
    "JobEvent",
    "JobEventKind",
    "FunctionJob",
    "InvalidStepError",
    "JobBuilder",
    "JobCancelled",
    "JobContext",
    "JobDiscarded",
    "JobFailed",
    "JobInterrupted",
    "JobNotCompleted",
    "JobStatus",
    "JobDescriptor",
    "NextRun",
    "Quebec",
    "QuebecError",
    "RateLimitConflict",
    "RescueStrategy",
    "RetryStrategy",
    "SerializationError",
    "StepContext",
    "UnknownJob",
    "UnknownJobClass",
    "WaitTimeout",
    "__version__",
    "context",
    "current_batch_id",
]


def __getattr__(name: str) -> object:
    # The dashboard (Starlette) is loaded only when asked for: `quebec.ControlPlaneASGI`.
    if name == "ControlPlaneASGI":
        from quebec.app_control_plane import _dashboard

        return _dashboard("app").ControlPlaneASGI
    raise AttributeError(f"module 'quebec' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), "ControlPlaneASGI"})
