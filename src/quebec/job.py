"""BaseClass: what a user subclasses. Options are checked when the class is defined."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import repeat
from typing import Any, ClassVar, Protocol

from quebec import flow_options
from quebec import options as enqueue_options
from quebec.batch_context import CALLBACK_KEY, OnInstance, envelope_batch_id
from quebec.conflicts import ConcurrencyConflict as ConcurrencyConflict
from quebec.conflicts import RateLimitConflict as RateLimitConflict
from quebec.enqueue_callbacks import check_enqueue_callbacks, has_enqueue_callbacks
from quebec.errors import ConfigError, EnqueueError
from quebec.options import NO_OPTIONS as _NO_OPTIONS
from quebec.options import RESERVED_KWARGS as _RESERVED
from quebec.options import JobOptions
from quebec.retry import DiscardStrategy, RescueStrategy, RetryStrategy
from quebec.types import JobStatus


class Enqueuer(Protocol):
    """What a job class needs from Quebec to enqueue (bound at registration)."""

    def enqueue_jobs(self, jobs: Sequence[ActiveJob], *, callbacks: bool = False) -> list[ActiveJob]: ...


@dataclass(slots=True)
class JobDescriptor:
    """What `perform_all_later` takes: a job class with its arguments and enqueue options.

    `Job.build(...)` makes one (an ActiveJob not enqueued yet, the cheapest thing to bulk
    insert); one made by hand, as in the wheel, may give `options` as a dict of set()'s
    keywords.
    """

    job_class: type[BaseClass]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    options: JobOptions | Mapping[str, Any]


@dataclass(slots=True)
class ActiveJob(JobDescriptor):
    """A job as enqueued (id set) or built for `perform_all_later` (id None).

    `envelope` is the arguments column as stored (JSON), known once the job is planned for
    insert. The class-level values below are the wheel's defaults for a job outside perform.
    """

    options: JobOptions = _NO_OPTIONS
    id: int | None = None
    active_job_id: str | None = None
    queue_name: str | None = None
    priority: int | None = None
    scheduled_at: datetime | None = None
    state: str | None = None
    envelope: str | None = None
    # The Quebec that enqueued it, which job.wait() and job.status ask.
    quebec: Any = field(default=None, repr=False, compare=False)
    # The batch it joined (enqueued inside `with qc.batch(...)` / `batch.enqueue()`): `batch_id`.
    _batch_id: int | None = field(default=None, repr=False, compare=False)

    batch_id: ClassVar[Any] = OnInstance("_batch_id")  # None on the class, as the wheel's

    callback_batch_id: ClassVar[str | None] = None
    concurrency_key: ClassVar[str | None] = None
    concurrency_on_conflict: ClassVar[ConcurrencyConflict] = ConcurrencyConflict.Block
    created_at: ClassVar[datetime | None] = None
    updated_at: ClassVar[datetime | None] = None
    finished_at: ClassVar[datetime | None] = None
    executions: ClassVar[int] = 0
    logger: ClassVar[logging.Logger] = logging.getLogger("quebec.job")
    rescue_strategies: ClassVar[tuple[RescueStrategy, ...]] = ()

    @property
    def class_name(self) -> str:
        return self.job_class.__qualname__

    @property
    def arguments(self) -> str | None:
        """The envelope's `arguments` object as JSON, as the wheel's ActiveJob.arguments shows it
        (read from `envelope` when asked, so that a bulk enqueue parses nothing)."""
        return None if self.envelope is None else arguments_json(self.envelope)

    def wait(self, timeout: float | None = None) -> Any:
        """Block until the job is done and return what perform returned (its last attempt's, if
        it was retried). Raises JobFailed (with the error's class, message and backtrace),
        JobDiscarded or JobCancelled when it ended otherwise, WaitTimeout after `timeout` s."""
        return self._enqueuer("wait").wait_for_job(self, timeout)

    async def wait_async(self, timeout: float | None = None) -> Any:
        """`await job.wait_async()`: wait() in a thread, so the event loop goes on meanwhile."""
        return await asyncio.to_thread(self.wait, timeout)

    @property
    def status(self) -> JobStatus | None:
        """The job's status now (one read of the tables); None when its row is gone."""
        if self.id is None:
            return None
        row = self._enqueuer("status").get_job(self.id)
        return None if row is None else row.status

    def _enqueuer(self, what: str) -> Any:
        if self.quebec is None:
            raise EnqueueError(
                f"{self.class_name} job {self.id} was not enqueued by a Quebec instance, so {what} has nothing "
                f"to ask; use the job that perform_later returned, or qc.wait_for_job(job_id)"
            )
        return self.quebec

    @classmethod
    def perform_later(cls, *args: Any, **kwargs: Any) -> ActiveJob:
        """Refused: an ActiveJob is the record of an enqueued job, not a job class (the wheel
        would insert a row of class "ActiveJob" that no worker can run)."""
        raise EnqueueError(
            "quebec.ActiveJob is the record of an enqueued job, not a job class; subclass quebec.BaseClass "
            "and call YourJob.perform_later(...)"
        )

    @classmethod
    def register_rescue_strategy(cls, strategy: RescueStrategy) -> None:
        """Refused: no job class inherits from ActiveJob here (the wheel accepts it and never uses it)."""
        raise ConfigError(
            "rescue strategies are registered on a job class: YourJob.register_rescue_strategy(...), or "
            "quebec.BaseClass.register_rescue_strategy(...) for every job"
        )

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


def arguments_json(envelope: str) -> str:
    inner = json.loads(envelope).get("arguments")
    return json.dumps(inner, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _split(cls: type[BaseClass], args: tuple[Any, ...]) -> tuple[Enqueuer, tuple[Any, ...]]:
    # The Enqueuer protocol checked by its one method: isinstance() against a runtime-checkable
    # Protocol cost more than the rest of perform_later's Python (it walks the protocol's members).
    if args and callable(getattr(type(args[0]), "enqueue_jobs", None)):
        return args[0], args[1:]
    if cls._quebec is None:
        raise EnqueueError(
            f"{cls.__qualname__} is not registered with a Quebec instance; decorate it with "
            f"@qc.register_job or pass qc as the first argument of perform_later"
        )
    return cls._quebec, args


class JobBuilder:
    """`Job.set(...)`: the same class with enqueue options bound. `JobBuilder(Job, queue=...)`
    as in the wheel is the same as `Job.set(queue=...)`."""

    def __init__(self, job_class: type[BaseClass], options: JobOptions | None = None, /, **named: Any) -> None:
        if options is None:
            options = job_class.set(**named).options if named else _NO_OPTIONS
        elif named:
            raise EnqueueError(f"JobBuilder({job_class.__qualname__}, ...) takes JobOptions or keywords, not both")
        self.job_class = job_class
        self.options: JobOptions = options

    def set(self, **options: Any) -> JobBuilder:
        merged = enqueue_options.merge(self.options, self.job_class.__qualname__, **options)
        return JobBuilder(self.job_class, merged)

    def build(self, *args: Any, **kwargs: Any) -> ActiveJob:
        opts = enqueue_options.from_reserved(self.job_class.__qualname__, kwargs, self.options)
        return ActiveJob(self.job_class, tuple(args), kwargs, opts)

    def perform_later(self, *args: Any, **kwargs: Any) -> ActiveJob:
        qc, rest = _split(self.job_class, args)
        job = self.build(*rest, **kwargs)
        return qc.enqueue_jobs([job], callbacks=has_enqueue_callbacks(self.job_class))[0]


ConfiguredJob = JobBuilder  # its earlier name, kept for code that imports it


def active_jobs(batch: Iterable[JobDescriptor]) -> list[ActiveJob]:
    """perform_all_later's input as ActiveJobs: what Job.build made passes as is (the bulk
    path: one isinstance per job); a JobDescriptor made by hand is built through set(), so its
    options are checked as set() checks them. Anything else is left for enqueuing to refuse."""
    jobs: list[Any] = list(batch)
    if all(map(isinstance, jobs, repeat(ActiveJob))):
        return jobs
    return [_from_descriptor(j) if _hand_made(j) else j for j in jobs]


def _hand_made(job: object) -> bool:
    return isinstance(job, JobDescriptor) and not isinstance(job, ActiveJob)


def _from_descriptor(descriptor: JobDescriptor) -> ActiveJob:
    cls, options = descriptor.job_class, descriptor.options
    if not (isinstance(cls, type) and issubclass(cls, BaseClass)):
        raise EnqueueError(f"JobDescriptor.job_class must be a quebec.BaseClass subclass, got {cls!r}")
    if not isinstance(options, Mapping):
        raise EnqueueError(f"JobDescriptor.options must be a dict of set()'s keywords, got {options!r}")
    builder = JobBuilder(cls, options) if isinstance(options, JobOptions) else cls.set(**dict(options))
    return builder.build(*descriptor.args, **descriptor.kwargs)


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
    # False: what perform returns is not kept (job.wait() then returns None).
    store_result: ClassVar[bool] = True
    # True: arguments and result are stored encrypted with encryption_key (quebec.encryption).
    encrypt: ClassVar[bool] = False

    _quebec: ClassVar[Enqueuer | None] = None
    # Registered with register_rescue_strategy, tried after rescue_from (retry.rescue_strategies_of).
    # One list per class that registers; this one, on BaseClass, applies to every job.
    rescue_strategies: ClassVar[list[RescueStrategy]] = []

    # set on the instance before perform (and `priority`, the job's own, shadowing the option)
    id: int
    active_job_id: str | None
    queue_name: str
    executions: int
    scheduled_at: datetime | None
    created_at: datetime | None
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
        _check_callbacks_and_rescues(cls, name)

    def perform(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__qualname__} must define perform(self, ...)")

    @property
    def arguments(self) -> str | None:
        """Inside perform: the stored envelope's `arguments` object as JSON, as ActiveJob.arguments
        shows it (parsed when asked, so a job that never reads it pays nothing)."""
        stored = vars(self).get("_stored_arguments")
        return arguments_json(stored) if stored else None

    @property
    def batch_id(self) -> int | None:
        """Inside perform: the id of the batch this job belongs to, or None."""
        return envelope_batch_id(vars(self).get("_stored_arguments"))

    @property
    def callback_batch_id(self) -> int | None:
        """Inside perform of a batch callback job: the id of the batch that finished, or None."""
        return envelope_batch_id(vars(self).get("_stored_arguments"), CALLBACK_KEY)

    @property
    def batch(self) -> Any:
        """The batch this job runs for: its own batch for a member job, the finished batch for
        a callback job (a quebec.Batch, read when asked). None outside batches."""
        batch_id = self.batch_id
        if batch_id is None:
            batch_id = self.callback_batch_id
        finder = getattr(type(self)._quebec, "find_batch", None)
        return None if batch_id is None or finder is None else finder(batch_id)

    def rate_limit_key(self, *args: Any, **kwargs: Any) -> str:
        """The rate-limit bucket of a job with these arguments; override it to limit per key
        (an account, a host). By default one bucket per class: the class name. Read when the
        job is about to start, so a change applies to jobs already enqueued."""
        return type(self).__qualname__

    rate_limit_key.quebec_default = True  # type: ignore[attr-defined]  # flow_options: not overridden

    @classmethod
    def set(
        cls,
        *,
        wait: float | timedelta | None = None,
        wait_until: datetime | None = None,
        queue: str | None = None,
        priority: int | None = None,
    ) -> JobBuilder:
        given = {"wait": wait, "wait_until": wait_until, "queue": queue, "priority": priority}
        return JobBuilder(cls, enqueue_options.job_options(cls.__qualname__, **given))

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> ActiveJob:
        if kwargs and any(k in kwargs for k in _RESERVED):
            return JobBuilder(cls, _NO_OPTIONS).build(*args, **kwargs)
        return ActiveJob(cls, args, kwargs, _NO_OPTIONS)  # the bulk-enqueue hot path: nothing to merge

    @classmethod
    def perform_later(cls, *args: Any, **kwargs: Any) -> ActiveJob:
        return JobBuilder(cls, _NO_OPTIONS).perform_later(*args, **kwargs)

    @classmethod
    def register_rescue_strategy(cls, strategy: RescueStrategy) -> None:
        """Add a rescue strategy to this class (and its subclasses), tried after `rescue_from`."""
        if not isinstance(strategy, RescueStrategy):
            raise ConfigError(
                f"{cls.__qualname__}.register_rescue_strategy takes a quebec.RescueStrategy(...), got {strategy!r}"
            )
        if "rescue_strategies" not in cls.__dict__:  # never append to a base class's list
            cls.rescue_strategies = []
        cls.rescue_strategies.append(strategy)

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


def _check_class_options(cls: type[BaseClass], name: str) -> None:
    flow_options.check(cls, name)
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


def _check_callbacks_and_rescues(cls: type[BaseClass], name: str) -> None:
    check_enqueue_callbacks(cls, name)
    own = cls.__dict__.get("rescue_strategies")
    if own is not None:
        if not isinstance(own, list | tuple):
            raise ConfigError(f"{name}.rescue_strategies must be a list of quebec.RescueStrategy(...), got {own!r}")
        for rescue in own:
            if not isinstance(rescue, RescueStrategy):
                raise ConfigError(
                    f"{name}.rescue_strategies entries must be quebec.RescueStrategy(...), got {rescue!r}"
                )
        cls.rescue_strategies = list(own)
