"""BaseClass: what a user subclasses. Options are checked when the class is defined."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, ClassVar, Protocol, runtime_checkable

from quebec import options as enqueue_options
from quebec.errors import ConfigError, EnqueueError
from quebec.options import NO_OPTIONS as _NO_OPTIONS
from quebec.options import RESERVED_KWARGS as _RESERVED
from quebec.options import JobOptions
from quebec.retry import DiscardStrategy, RescueStrategy, RetryStrategy


@runtime_checkable
class Enqueuer(Protocol):
    """What a job class needs from Quebec to enqueue (bound at registration)."""

    def enqueue_jobs(self, jobs: Sequence[ActiveJob]) -> list[ActiveJob]: ...


@dataclass(slots=True)
class ActiveJob:
    """A job as enqueued (id set) or built for `perform_all_later` (id None)."""

    job_class: type[BaseClass]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    options: JobOptions = field(default_factory=JobOptions)
    id: int | None = None
    active_job_id: str | None = None
    queue_name: str | None = None
    priority: int | None = None
    scheduled_at: datetime | None = None
    state: str | None = None

    @property
    def class_name(self) -> str:
        return self.job_class.__qualname__

    def __repr__(self) -> str:
        return (
            f"ActiveJob(id={self.id}, class_name={self.class_name}, queue_name={self.queue_name}, "
            f"priority={self.priority}, active_job_id={self.active_job_id}, scheduled_at={self.scheduled_at})"
        )

    def resolve(self, *, now: datetime, forced_queue: str | None = None) -> ActiveJob:
        """Fill in queue, priority and scheduled_at from the options and the class (in place)."""
        cls, opts = self.job_class, self.options
        queue = forced_queue or (opts.queue if opts.queue is not None else cls.resolve_queue(*self.args, **self.kwargs))
        priority = opts.priority if opts.priority is not None else cls.resolve_priority()
        at = enqueue_options.scheduled_at(opts, now, cls.__qualname__)
        self.queue_name, self.priority, self.scheduled_at = queue, priority, at
        return self


def _split(cls: type[BaseClass], args: tuple[Any, ...]) -> tuple[Enqueuer, tuple[Any, ...]]:
    if args and isinstance(args[0], Enqueuer):
        return args[0], args[1:]
    if cls._quebec is None:
        raise EnqueueError(
            f"{cls.__qualname__} is not registered with a Quebec instance; decorate it with "
            f"@qc.register_job or pass qc as the first argument of perform_later"
        )
    return cls._quebec, args


class ConfiguredJob:
    """`Job.set(...)`: the same class with enqueue options bound."""

    def __init__(self, job_class: type[BaseClass], options: JobOptions) -> None:
        self.job_class = job_class
        self.options = options

    def set(self, **options: Any) -> ConfiguredJob:
        merged = enqueue_options.merge(self.options, self.job_class.__qualname__, **options)
        return ConfiguredJob(self.job_class, merged)

    def build(self, *args: Any, **kwargs: Any) -> ActiveJob:
        opts = enqueue_options.from_reserved(self.job_class.__qualname__, kwargs, self.options)
        return ActiveJob(self.job_class, tuple(args), kwargs, opts)

    def perform_later(self, *args: Any, **kwargs: Any) -> ActiveJob:
        qc, rest = _split(self.job_class, args)
        return qc.enqueue_jobs([self.build(*rest, **kwargs)])[0]


class BaseClass:
    """Subclass it and define `perform`. Inside perform: self.id, self.logger, self.queue_name…"""

    queue_as: ClassVar[str | Callable[..., str]] = "default"
    priority: ClassVar[int] = 0
    queue_with_priority: ClassVar[int | None] = None
    retry_on: ClassVar[Sequence[RetryStrategy]] = ()
    discard_on: ClassVar[Sequence[DiscardStrategy] | Sequence[type[BaseException]]] = ()
    rescue_from: ClassVar[Sequence[RescueStrategy]] = ()
    timeout: ClassVar[float | timedelta | None] = None
    # True: a job whose process died is failed (ProcessPrunedError) instead of run again.
    at_most_once: ClassVar[bool] = False

    _quebec: ClassVar[Enqueuer | None] = None

    # set on the instance before perform
    id: int
    active_job_id: str | None
    queue_name: str
    executions: int
    scheduled_at: datetime | None
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__qualname__
        for special in ("__init__", "__new__"):
            if special in cls.__dict__:
                raise TypeError(
                    f"{name} defines {special}, which Quebec calls itself; move set-up into perform "
                    f"or a before_perform hook"
                )
        _check_class_options(cls, name)

    def perform(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__qualname__} must define perform(self, ...)")

    @classmethod
    def set(
        cls,
        *,
        wait: float | timedelta | None = None,
        wait_until: datetime | None = None,
        queue: str | None = None,
        priority: int | None = None,
    ) -> ConfiguredJob:
        given = {"wait": wait, "wait_until": wait_until, "queue": queue, "priority": priority}
        return ConfiguredJob(cls, enqueue_options.job_options(cls.__qualname__, **given))

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> ActiveJob:
        if kwargs and any(k in kwargs for k in _RESERVED):
            return ConfiguredJob(cls, _NO_OPTIONS).build(*args, **kwargs)
        return ActiveJob(cls, args, kwargs, _NO_OPTIONS)  # the bulk-enqueue hot path: nothing to merge

    @classmethod
    def perform_later(cls, *args: Any, **kwargs: Any) -> ActiveJob:
        return ConfiguredJob(cls, _NO_OPTIONS).perform_later(*args, **kwargs)

    @classmethod
    def resolve_queue(cls, *args: Any, **kwargs: Any) -> str:
        queue = cls.queue_as
        if callable(queue):
            queue = queue(*args, **kwargs)
        if not isinstance(queue, str):
            raise EnqueueError(f"{cls.__qualname__}.queue_as must give a queue name (str), got {queue!r}")
        return queue

    @classmethod
    def resolve_priority(cls) -> int:
        return cls.queue_with_priority if cls.queue_with_priority is not None else cls.priority


class ConcurrencyConflict(Enum):
    Block = "block"
    Discard = "discard"


class RateLimitConflict(Enum):
    Reschedule = "reschedule"
    Discard = "discard"


# Seed options that are accepted but not enforced yet: say so once per class rather than
# pretending (a limit that silently does nothing is worse than a warning).
_NOT_ENFORCED = ("concurrency_limit", "rate_limit_max", "exclusive")


def _check_class_options(cls: type[BaseClass], name: str) -> None:
    for option in _NOT_ENFORCED:
        if option in cls.__dict__ and cls.__dict__[option]:
            warnings.warn(
                f"{name}.{option} is accepted but not enforced by this version of Quebec yet; "
                f"jobs of {name} run without that limit",
                RuntimeWarning,
                stacklevel=4,
            )
    if not (isinstance(cls.queue_as, str) or callable(cls.queue_as)):
        raise ConfigError(f"{name}.queue_as must be a queue name or a callable, got {cls.queue_as!r}")
    for attr in ("priority", "queue_with_priority"):
        value = getattr(cls, attr)
        if value is not None:
            enqueue_options.check_priority(f"{name}.{attr}", value)
    for entry in cls.retry_on:
        if not isinstance(entry, RetryStrategy):
            raise ConfigError(f"{name}.retry_on entries must be quebec.RetryStrategy(...), got {entry!r}")
    for rescue in cls.rescue_from:
        if not isinstance(rescue, RescueStrategy):
            raise ConfigError(f"{name}.rescue_from entries must be quebec.RescueStrategy(...), got {rescue!r}")
    for discard in cls.discard_on:
        if not isinstance(discard, DiscardStrategy) and not (
            isinstance(discard, type) and issubclass(discard, BaseException)
        ):
            raise ConfigError(
                f"{name}.discard_on entries must be exception classes or quebec.DiscardStrategy(...), got {discard!r}"
            )
    timeout = cls.timeout
    if timeout is not None:
        seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0:
            raise ConfigError(f"{name}.timeout must be seconds > 0 or a timedelta, got {timeout!r}")
