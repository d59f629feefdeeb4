"""Quebec: a background job queue that needs nothing but your SQL database."""

from quebec.app import Quebec
from quebec.errors import (
    AbortEnqueue,
    ConfigError,
    DatabaseUnavailable,
    EnqueueError,
    QuebecError,
    SerializationError,
    UnknownJobClass,
)
from quebec.flow_options import ConcurrencyStrategy
from quebec.job import ActiveJob, BaseClass, ConcurrencyConflict, JobBuilder, JobDescriptor, RateLimitConflict
from quebec.retry import DiscardStrategy, RescueStrategy, RetryStrategy

__version__ = "0.1.0"

__all__ = [
    "AbortEnqueue",
    "ActiveJob",
    "BaseClass",
    "ConcurrencyConflict",
    "ConcurrencyStrategy",
    "ConfigError",
    "DatabaseUnavailable",
    "DiscardStrategy",
    "EnqueueError",
    "JobBuilder",
    "JobDescriptor",
    "Quebec",
    "QuebecError",
    "RateLimitConflict",
    "RescueStrategy",
    "RetryStrategy",
    "SerializationError",
    "UnknownJobClass",
    "__version__",
]
