"""decide(): what happens to a job after perform raised. Pure; no database, no user code.

Its answers are decisions; the executor turns them into the outcomes the completer
writes (engine/completer.py), after running any handler a decision names.

Order, as ActiveJob: retry_on (first matching strategy) → discard_on → rescue_from →
failure. A matching retry strategy with attempts left schedules the next run; once
exhausted it calls its handler if it has one (the job is then done), otherwise the
error falls through to discard_on, rescue_from and finally failure.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from quebec.retry import DiscardStrategy, RetryStrategy, rescue_strategies_of
from quebec.types import ErrorInfo

Handler = Callable[[Any, BaseException], Any]


@dataclass(frozen=True, slots=True)
class Succeeded:
    pass


@dataclass(frozen=True, slots=True)
class RetryAt:
    delay: float
    strategy_key: str
    error: ErrorInfo


@dataclass(frozen=True, slots=True)
class Discarded:
    """Done without running again; `handler` (if any) is called by the executor, outside any transaction,
    always as handler(job, error): retry.job_handler() adapted a one-argument handler already."""

    handler: Handler | None
    reason: str  # "retry_exhausted" | "discard_on" | "rescue_from"
    error: ErrorInfo


@dataclass(frozen=True, slots=True)
class Failed:
    error: ErrorInfo


Decision = Succeeded | RetryAt | Discarded | Failed


def error_info(error: BaseException) -> ErrorInfo:
    """Class, message and traceback of any exception, even one whose __str__ raises."""
    try:
        message = str(error)
    except Exception:  # noqa: BLE001 - the job still needs its failure recorded
        message = f"<{type(error).__name__} object: str() raised>"
    return ErrorInfo(type(error).__name__, message, tuple(line.rstrip("\n") for line in _traceback(error)))


def _traceback(error: BaseException) -> list[str]:
    """traceback.format_exception's lines, chained exceptions included, without the
    `^^^^` markers under each frame: computing them parses every frame's source line
    (half the cost of a failure), and a stored traceback is read without them."""
    summary = traceback.TracebackException(type(error), error, error.__traceback__, compact=True)
    todo, seen = [summary], set()
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        for frame in current.stack:
            frame.colno = None
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)
        todo.extend(getattr(current, "exceptions", None) or ())
    return list(summary.format())


def decide(job_class: Any, error: BaseException, exception_executions: dict[str, int]) -> Decision:
    info = error_info(error)
    retry_on: list[RetryStrategy] = list(getattr(job_class, "retry_on", ()))
    for strategy in retry_on:
        if strategy.matches(error):
            count = exception_executions.get(strategy.key, 0)
            if count + 1 < strategy.attempts:
                return RetryAt(strategy.delay(count + 1), strategy.key, info)
            if strategy.handler is not None:
                return Discarded(strategy.job_handler, "retry_exhausted", info)
            break
    for entry in getattr(job_class, "discard_on", ()):
        discard = entry if isinstance(entry, DiscardStrategy) else DiscardStrategy(entry)
        if discard.matches(error):
            return Discarded(discard.job_handler, "discard_on", info)
    for rescue in rescue_strategies_of(job_class):
        if rescue.matches(error):
            return Discarded(rescue.job_handler, "rescue_from", info)
    return Failed(info)
