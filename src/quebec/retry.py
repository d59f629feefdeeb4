"""Retry strategies and backoff maths. Pure: no database, no threads."""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from quebec.errors import ConfigError

Wait = float | int | timedelta | str | Callable[[int], float | int | timedelta]
# A user's handler: handler(job, error) as the wheel calls it, or handler(error).
Handler = Callable[..., Any]
JobHandler = Callable[[Any, BaseException], Any]
Exceptions = tuple[type[BaseException], ...] | type[BaseException] | list[type[BaseException]]
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


def job_handler(handler: object, *, what: str) -> JobHandler | None:
    """`handler` as a callable of (job, error), chosen by its arity; ConfigError if it fits neither.

    A handler that can take two positional arguments is called (job, error), as the wheel
    calls every handler; one that takes exactly one is called (error), as seed 000's
    `handler=lambda exc: ...`. Decided once, here, so a wrong arity fails when the strategy
    is built (at class definition) and not when a job first fails.
    """
    if handler is None:
        return None
    if not callable(handler):
        raise ConfigError(f"{what} handler must be callable as handler(job, error) or handler(error), got {handler!r}")
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError):  # a builtin without a signature: call it as the wheel does
        return handler
    if _binds(signature, 2):
        return handler
    if _binds(signature, 1):
        return _ErrorOnly(handler)
    raise ConfigError(
        f"{what} handler {getattr(handler, '__qualname__', handler)}{signature} takes neither (job, error) nor "
        f"(error); define it as `def handler(job, error)` or `def handler(error)`"
    )


def _binds(signature: inspect.Signature, count: int) -> bool:
    try:
        signature.bind(*range(count))
    except TypeError:
        return False
    return True


class _ErrorOnly:
    """A one-argument handler seen as a (job, error) one."""

    __slots__ = ("handler",)

    def __init__(self, handler: Callable[[BaseException], Any]) -> None:
        self.handler = handler

    def __call__(self, job: Any, error: BaseException) -> Any:
        return self.handler(error)

    def __repr__(self) -> str:
        return f"{self.handler!r} (called with the error only)"


class _Matching:
    """What the three strategies share: which exceptions they catch and how their handler is called."""

    exceptions: Exceptions
    handler: Handler | None
    _types: tuple[type[BaseException], ...]
    _job_handler: JobHandler | None

    def _prepare(self, what: str) -> None:
        # `exceptions` stays as given (a class or a tuple), as the wheel shows it; a list
        # becomes a tuple so the strategy stays hashable.
        if isinstance(self.exceptions, list):
            object.__setattr__(self, "exceptions", tuple(self.exceptions))
        object.__setattr__(self, "_types", _exceptions(self.exceptions, what=f"{what} exceptions"))
        object.__setattr__(self, "_job_handler", job_handler(self.handler, what=what))

    def matches(self, error: BaseException) -> bool:
        return isinstance(error, self._types)

    @property
    def job_handler(self) -> JobHandler | None:
        """The handler as a callable of (job, error), whatever its own arity; None without one."""
        return self._job_handler

    def call_handler(self, job: Any, error: BaseException) -> Any:
        """Call the handler with (job, error) or (error), as its arity asks; None without one."""
        return None if self._job_handler is None else self._job_handler(job, error)


@dataclass(frozen=True)
class RetryStrategy(_Matching):
    """retry_on entry: run again on these exceptions, `attempts` runs in all (ActiveJob semantics).

    `wait` is seconds, a timedelta, a callable of the attempt number (1 = first retry)
    returning either, or a named backoff: "fixed", "linear", "exponential" or
    "polynomially_longer" (ActiveJob's default curve), each with `base` seconds and
    `jitter` (a fraction, 0.15 by default, as ActiveJob).
    """

    exceptions: Exceptions
    wait: Wait = 3
    attempts: int = 5
    handler: Handler | None = None
    jitter: float = 0.15
    base: float = 3.0
    key: str = field(init=False)
    _types: tuple[type[BaseException], ...] = field(init=False, repr=False, compare=False)
    _job_handler: JobHandler | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._prepare("RetryStrategy")
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
        # The counter key the wheel writes into exception_executions: "[A, B]".
        object.__setattr__(self, "key", "[" + ", ".join(e.__name__ for e in self._types) + "]")

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
class DiscardStrategy(_Matching):
    """discard_on entry: drop the job (finished, not failed) on these exceptions."""

    exceptions: Exceptions
    handler: Handler | None = None
    _types: tuple[type[BaseException], ...] = field(init=False, repr=False, compare=False)
    _job_handler: JobHandler | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._prepare("DiscardStrategy")


@dataclass(frozen=True)
class RescueStrategy(_Matching):
    """rescue_from entry: call the handler instead of failing; the job counts as finished."""

    exceptions: Exceptions
    handler: Handler | None = None
    _types: tuple[type[BaseException], ...] = field(init=False, repr=False, compare=False)
    _job_handler: JobHandler | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._prepare("RescueStrategy")


def rescue_strategies_of(job_class: Any) -> list[RescueStrategy]:
    """The rescue strategies that apply to a job class, in the order they are tried: its
    `rescue_from`, then those registered with `register_rescue_strategy` on it and on its
    bases (nearest class first)."""
    found: list[RescueStrategy] = list(getattr(job_class, "rescue_from", ()))
    for klass in getattr(job_class, "__mro__", ()):
        for strategy in vars(klass).get("rescue_strategies", ()):
            if not any(strategy is seen for seen in found):
                found.append(strategy)
    return found
