"""Retry strategies and backoff maths. Pure: no database, no threads."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from quebec.errors import ConfigError

Wait = float | int | timedelta | str | Callable[[int], float | int | timedelta]
Handler = Callable[[Any, BaseException], Any]
BACKOFFS = ("fixed", "linear", "exponential", "polynomially_longer")


def _seconds(value: object, *, what: str) -> float:
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{what} must be seconds (a number) or a timedelta, got {value!r}")
    else:
        seconds = float(value)
    if seconds < 0 or seconds != seconds:
        raise ConfigError(f"{what} must not be negative, got {value!r}")
    return seconds


def _exceptions(value: object, *, what: str) -> tuple[type[BaseException], ...]:
    items = value if isinstance(value, tuple | list) else (value,)
    found = tuple(e for e in items if isinstance(e, type) and issubclass(e, BaseException))
    if not found:
        raise ConfigError(f"{what} needs at least one exception class, got {value!r}")
    return found


@dataclass(frozen=True)
class RetryStrategy:
    """retry_on entry: run again on these exceptions, `attempts` runs in all (ActiveJob semantics).

    `wait` is seconds, a timedelta, a callable of the attempt number (1 = first retry)
    returning either, or a named backoff: "fixed", "linear", "exponential" or
    "polynomially_longer" (ActiveJob's default curve), each with `base` seconds and
    `jitter` (a fraction, 0.15 by default, as ActiveJob).
    """

    exceptions: tuple[type[BaseException], ...] | type[BaseException] | list[type[BaseException]]
    wait: Wait = 3
    attempts: int = 5
    handler: Handler | None = None
    jitter: float = 0.15
    base: float = 3.0
    key: str = field(init=False)

    def __post_init__(self) -> None:
        excs = _exceptions(self.exceptions, what="RetryStrategy exceptions")
        object.__setattr__(self, "exceptions", excs)
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int) or self.attempts < 1:
            raise ConfigError(f"RetryStrategy attempts must be an integer ≥ 1, got {self.attempts!r}")
        if isinstance(self.wait, str):
            if self.wait not in BACKOFFS:
                raise ConfigError(
                    f"RetryStrategy wait {self.wait!r} is not a backoff; use one of {', '.join(BACKOFFS)}"
                )
        elif not callable(self.wait):
            _seconds(self.wait, what="RetryStrategy wait")
        if not 0 <= self.jitter <= 1:
            raise ConfigError(f"RetryStrategy jitter must be between 0 and 1, got {self.jitter!r}")
        if self.handler is not None and not callable(self.handler):
            raise ConfigError(f"RetryStrategy handler must be callable (job, error), got {self.handler!r}")
        # The counter key the wheel writes into exception_executions: "[A, B]".
        object.__setattr__(self, "key", "[" + ", ".join(e.__name__ for e in excs) + "]")

    def matches(self, error: BaseException) -> bool:
        return isinstance(error, self.exceptions)  # type: ignore[arg-type]

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (1-based)."""
        wait = self.wait
        if isinstance(wait, str):
            seconds: float = {
                "fixed": self.base,
                "linear": self.base * attempt,
                "exponential": self.base * 2 ** (attempt - 1),
                "polynomially_longer": attempt**4 + 2.0,
            }[wait]
        elif callable(wait):
            seconds = _seconds(wait(attempt), what=f"RetryStrategy wait({attempt})")
        else:
            seconds = _seconds(wait, what="RetryStrategy wait")
        if self.jitter and seconds:
            seconds += seconds * self.jitter * random.random()
        return seconds


@dataclass(frozen=True)
class DiscardStrategy:
    """discard_on entry: drop the job (finished, not failed) on these exceptions."""

    exceptions: tuple[type[BaseException], ...] | type[BaseException] | list[type[BaseException]]
    handler: Handler | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "exceptions", _exceptions(self.exceptions, what="DiscardStrategy exceptions"))

    def matches(self, error: BaseException) -> bool:
        return isinstance(error, self.exceptions)  # type: ignore[arg-type]


@dataclass(frozen=True)
class RescueStrategy:
    """rescue_from entry: call the handler instead of failing; the job counts as finished."""

    exceptions: tuple[type[BaseException], ...] | type[BaseException] | list[type[BaseException]]
    handler: Handler | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "exceptions", _exceptions(self.exceptions, what="RescueStrategy exceptions"))

    def matches(self, error: BaseException) -> bool:
        return isinstance(error, self.exceptions)  # type: ignore[arg-type]
