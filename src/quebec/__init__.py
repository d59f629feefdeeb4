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
from quebec.job import ActiveJob, BaseClass
from quebec.retry import DiscardStrategy, RescueStrategy, RetryStrategy

__version__ = "0.1.0"

__all__ = [
    "ActiveJob",
    "BaseClass",
    "ConfigError",
    "DatabaseUnavailable",
    "DiscardStrategy",
    "EnqueueError",
    "Quebec",
    "QuebecError",
    "RescueStrategy",
    "RetryStrategy",
    "SerializationError",
    "UnknownJobClass",
    "__version__",
]
