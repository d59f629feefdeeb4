"""Flow-control options of a job class: concurrency limits, rate limits, exclusive jobs.

Checked once, when the class is defined (`check`), so a bad limit fails at import in one
sentence naming the class and the fix. The concurrency key is computed at enqueue
(`concurrency_key_of`), the rate-limit key at claim time (`rate_limit_key_of`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from quebec.conflicts import ConcurrencyConflict, RateLimitConflict
from quebec.errors import ConfigError, EnqueueError
from quebec.types import ConcurrencyRule

_YEAR = 366 * 86400


@dataclass(frozen=True, slots=True)
class ConcurrencyStrategy:
    """The wheel's value form of a concurrency limit: `concurrency = ConcurrencyStrategy(key=, to=, duration=)`
    on a job class is `concurrency_limit = to`, `concurrency_duration = duration` and a
    `concurrency_key` that returns `key` (a str) or `key(self, *args, **kwargs)` (a callable)."""

    key: str | Callable[..., str] | None = None
    to: int = 1
    duration: timedelta | float | None = None

    def __post_init__(self) -> None:
        _positive_int("ConcurrencyStrategy(to=…)", self.to)
        if self.duration is not None:
            _seconds("ConcurrencyStrategy(duration=…)", self.duration)
        if self.key is not None and not (isinstance(self.key, str) or callable(self.key)):
            raise ConfigError(
                f"ConcurrencyStrategy(key=…) must be a str or a function (self, *args, **kwargs) -> str, "
                f"got {self.key!r}"
            )


def _positive_int(where: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where} must be a whole number ≥ 1, got {value!r}")
    return value


def _seconds(where: str, value: object, *, at_least: float = 0.0) -> float:
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 < seconds <= _YEAR:
        raise ConfigError(f"{where} must be seconds > 0 (at most a year) or a timedelta, got {value!r}")
    if seconds < at_least:
        raise ValueError(
            f"{where} must be at least {at_least:g} second, got {value!r}; use timedelta(seconds=1) or more"
        )
    return float(seconds)


def check(cls: type, name: str) -> None:
    """Refuse bad flow options of job class `cls` (named `name`), at class definition."""
    strategy = cls.__dict__.get("concurrency")
    if isinstance(strategy, ConcurrencyStrategy):
        _adopt(cls, strategy)
    limit = getattr(cls, "concurrency_limit", None)
    if limit is not None:
        _positive_int(f"{name}.concurrency_limit", limit)
        duration = getattr(cls, "concurrency_duration", None)
        if duration is not None:
            _seconds(f"{name}.concurrency_duration", duration, at_least=1)
        key = getattr(cls, "concurrency_key", None)
        if key is not None and not callable(key):
            raise ConfigError(
                f"{name}.concurrency_key must be a method (self, *args, **kwargs) -> str, got {key!r}; "
                f"define `def concurrency_key(self, ...)` or leave it out for one key per class"
            )
        conflict = getattr(cls, "concurrency_on_conflict", ConcurrencyConflict.Block)
        if not isinstance(conflict, ConcurrencyConflict):
            raise ConfigError(
                f"{name}.concurrency_on_conflict must be quebec.ConcurrencyConflict.Block or .Discard, got {conflict!r}"
            )
    rate = getattr(cls, "rate_limit_max", None)
    if rate is not None:
        _positive_int(f"{name}.rate_limit_max", rate)
        window = getattr(cls, "rate_limit_duration", None)
        if not isinstance(window, timedelta) or window.total_seconds() < 1:
            raise ValueError(
                f"{name}.rate_limit_duration must be a datetime.timedelta of at least one second, got {window!r}; "
                f"e.g. rate_limit_duration = timedelta(seconds=2)"
            )
        throttle = getattr(cls, "rate_limit_on_throttle", RateLimitConflict.Reschedule)
        if not isinstance(throttle, RateLimitConflict):
            raise ConfigError(
                f"{name}.rate_limit_on_throttle must be quebec.RateLimitConflict.Reschedule or .Discard, "
                f"got {throttle!r}"
            )
    exclusive = getattr(cls, "exclusive", False)
    if not isinstance(exclusive, bool):
        raise ConfigError(f"{name}.exclusive must be True or False, got {exclusive!r}")
    unique_for = getattr(cls, "unique_for", None)
    if unique_for is not None and unique_for is not True:
        _seconds(f"{name}.unique_for (True, or a period)", unique_for)
    unique_key = getattr(cls, "unique_key", None)
    if unique_key is not None and not callable(unique_key):
        raise ConfigError(f"{name}.unique_key must be a method (self, *args, **kwargs) -> str, got {unique_key!r}")


def _adopt(cls: type, strategy: ConcurrencyStrategy) -> None:
    setattr(cls, "concurrency_limit", strategy.to)  # noqa: B010 - set on a user's class
    if strategy.duration is not None:
        setattr(cls, "concurrency_duration", strategy.duration)  # noqa: B010
    key = strategy.key
    if isinstance(key, str):
        setattr(cls, "concurrency_key", lambda self, *args, **kwargs: key)  # noqa: B010
    elif key is not None:
        setattr(cls, "concurrency_key", key)  # noqa: B010


def limited(cls: type) -> bool:
    return getattr(cls, "concurrency_limit", None) is not None


def concurrency_key_of(cls: type, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """The stored key of one job: `"ClassName/<concurrency_key(...)>"`, or `"ClassName"` when
    the class defines no concurrency_key (or it gives ""): None when the class is not limited."""
    if not limited(cls):
        return None
    name = cls.__qualname__
    method = getattr(cls, "concurrency_key", None)
    if method is None:
        return name
    try:
        key = method(object.__new__(cls), *args, **kwargs)
    except Exception as exc:
        raise EnqueueError(
            f"{name}.concurrency_key raised {type(exc).__name__}: {exc}; it is called with the job's arguments "
            f"(self, *args, **kwargs) at enqueue, so make it accept them"
        ) from None
    if not isinstance(key, str):
        raise EnqueueError(f"{name}.concurrency_key must return a str, got {key!r}; return e.g. str(account_id)")
    return f"{name}/{key}" if key else name


def rate_limit_key_of(cls: type, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """The rate-limit bucket of one job: `"ClassName/<rate_limit_key(...)>"`, or `"ClassName"`
    when the class defines no rate_limit_key (one bucket per class)."""
    name = cls.__qualname__
    method = getattr(cls, "rate_limit_key", None)
    if method is None or getattr(method, "quebec_default", False):  # BaseClass's: one bucket per class
        return name
    key = method(object.__new__(cls), *args, **kwargs)
    if not isinstance(key, str):
        raise TypeError(f"{name}.rate_limit_key must return a str, got {key!r}")
    return f"{name}/{key}"


def concurrency_rule(cls: type, default_duration: float) -> ConcurrencyRule:
    limit = getattr(cls, "concurrency_limit", None) or 1
    duration = getattr(cls, "concurrency_duration", None)
    seconds = default_duration if duration is None else _seconds("concurrency_duration", duration)
    discard = getattr(cls, "concurrency_on_conflict", None) is ConcurrencyConflict.Discard
    return ConcurrencyRule(int(limit), timedelta(seconds=seconds), discard)


def unique_of(
    cls: type, args: tuple[Any, ...], kwargs: dict[str, Any], now: datetime
) -> tuple[str, datetime | None] | None:
    """(stored key, held until) of one job of a class with `unique_for`; None when it has none.

    The key is a SHA-256 of the class name and `unique_key(self, *args, **kwargs)`, by
    default the arguments as JSON; held until None means until the job finishes.
    """
    unique_for = getattr(cls, "unique_for", None)
    if unique_for is None:
        return None
    name = cls.__qualname__
    method = getattr(cls, "unique_key", None)
    try:
        key = (
            method(object.__new__(cls), *args, **kwargs)
            if method is not None
            else json.dumps([list(args), kwargs], sort_keys=True, default=repr)
        )
    except Exception as exc:
        raise EnqueueError(
            f"{name}.unique_key raised {type(exc).__name__}: {exc}; it is called with the job's arguments"
        ) from None
    if not isinstance(key, str):
        raise EnqueueError(f"{name}.unique_key must return a str, got {key!r}")
    until = None if unique_for is True else now + timedelta(seconds=_seconds("unique_for", unique_for))
    return hashlib.sha256(f"{name}/{key}".encode()).hexdigest(), until
