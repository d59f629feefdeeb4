"""Quebec: a background job queue that needs nothing but your SQL database."""

from quebec.app import Quebec
from quebec.errors import (
    ConfigError,
    DatabaseUnavailable,
    EnqueueError,
    QuebecError,
    SerializationError,
    UnknownJobClass,
)
from quebec.job import ActiveJob, BaseClass, ConcurrencyConflict, RateLimitConflict
from quebec.retry import DiscardStrategy, RescueStrategy, RetryStrategy

__version__ = "0.1.0"

__all__ = [
    "ActiveJob",
    "BaseClass",
    "ConcurrencyConflict",
    "ConfigError",
    "DatabaseUnavailable",
    "DiscardStrategy",
    "EnqueueError",
    "Quebec",
    "QuebecError",
    "RateLimitConflict",
    "RescueStrategy",
    "RetryStrategy",
    "SerializationError",
    "UnknownJobClass",
    "__version__",
]
