"""Frozen values passed between the store and the layers above it.

Nothing here touches a database or a thread: the store takes these in and hands
these back, so the runtime never sees a SQLAlchemy row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple, Protocol, overload


class JobState(StrEnum):
    SCHEDULED = "scheduled"
    READY = "ready"
    BLOCKED = "blocked"
    CLAIMED = "claimed"
    FAILED = "failed"
    FINISHED = "finished"


class JobStatus(StrEnum):
    """What became of a job, as a user asks it: JobState, with "finished" told apart into
    finished (perform returned), discarded, cancelled and retried (this attempt failed and a
    newer row, same active_job_id, runs again), and claimed read as running."""

    SCHEDULED = "scheduled"
    READY = "ready"
    BLOCKED = "blocked"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"
    DISCARDED = "discarded"
    RETRIED = "retried"

    @property
    def is_final(self) -> bool:
        """Nothing more will happen to the job on its own (failed can still be retried by hand)."""
        return self in (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.DISCARDED)


# How a job ended when its row says only "finished" (job_results.status).
ENDINGS = (JobStatus.FINISHED, JobStatus.DISCARDED, JobStatus.CANCELLED, JobStatus.RETRIED)


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job about to be inserted. `arguments` is the serialised envelope (JSON text)."""

    queue_name: str
    class_name: str
    arguments: str
    priority: int
    active_job_id: str
    scheduled_at: datetime
    concurrency_key: str | None = None
    # Unique jobs: a duplicate of a job holding this key is not inserted (store/unique.py).
    # unique_until None with a key: the key is held until the job finishes.
    unique_key: str | None = None
    unique_until: datetime | None = None


@dataclass(slots=True)
class NewJobs:
    """Jobs about to be inserted, column by column.

    A bulk enqueue makes one of these rather than 10,000 NewJob objects: seven lists cost
    the garbage collector nothing, where 10,000 live objects made every other 10,000-job
    enqueue pay for a full collection (30 ms), and the store zips columns into rows in C.
    """

    queue_names: list[str]
    class_names: list[str]
    arguments: list[str]
    priorities: list[int]
    active_job_ids: list[str]
    scheduled_at: list[datetime]
    concurrency_keys: list[str | None]
    # None: no job of the batch is unique (the usual batch: no lists to build).
    unique_keys: list[str | None] | None = None
    unique_until: list[datetime | None] | None = None

    @classmethod
    def of(cls, jobs: Sequence[NewJob]) -> NewJobs:
        unique = any(j.unique_key is not None for j in jobs)
        return cls(
            [j.queue_name for j in jobs],
            [j.class_name for j in jobs],
            [j.arguments for j in jobs],
            [j.priority for j in jobs],
            [j.active_job_id for j in jobs],
            [j.scheduled_at for j in jobs],
            [j.concurrency_key for j in jobs],
            [j.unique_key for j in jobs] if unique else None,
            [j.unique_until for j in jobs] if unique else None,
        )

    def __len__(self) -> int:
        return len(self.arguments)


class Enqueued(NamedTuple):
    id: int
    active_job_id: str
    state: JobState


@dataclass(slots=True)
class EnqueuedJobs(Sequence[Enqueued]):
    """What enqueue_many returns: ids and states column by column, in input order; as a
    sequence, one Enqueued per job. A state is where the job went: scheduled (due later),
    ready, blocked (no concurrency slot free) or finished (its class discards on conflict)."""

    ids: list[int]
    active_job_ids: list[str]
    states: list[JobState]

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, index: int) -> Enqueued: ...
    @overload
    def __getitem__(self, index: slice) -> list[Enqueued]: ...
    def __getitem__(self, index: int | slice) -> Enqueued | list[Enqueued]:
        if isinstance(index, slice):
            return list(self)[index]
        return Enqueued(self.ids[index], self.active_job_ids[index], self.states[index])

    def __iter__(self) -> Iterator[Enqueued]:
        for job_id, active_job_id, state in zip(self.ids, self.active_job_ids, self.states, strict=True):
            yield Enqueued(job_id, active_job_id, state)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, EnqueuedJobs):
            return (self.ids, self.active_job_ids, self.states) == (other.ids, other.active_job_ids, other.states)
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class ConcurrencyRule:
    """How many jobs of one concurrency key may hold a slot at once, for how long a slot
    stays taken when its holder vanished (the semaphore's TTL), and whether a job that
    finds no slot free waits (blocked) or is dropped (discard)."""

    limit: int
    duration: timedelta
    discard: bool = False


# For a job whose class this process does not know: one slot, held a minute at most.
UNKNOWN_RULE = ConcurrencyRule(1, timedelta(seconds=60))


class FlowRules(Protocol):
    """What the store needs to know about job classes to route them (given by the layer
    that holds the registry): each class's concurrency rule, and whether any class here
    is limited at all (so the hot paths skip looking for slots to free)."""

    @property
    def limited(self) -> bool: ...

    def concurrency(self, class_name: str) -> ConcurrencyRule: ...

    def queue_rule(self, queue_name: str) -> ConcurrencyRule | None:
        """The cluster-wide limit of a queue (experimental_queue_concurrency), if it has one."""


class NoFlowRules:
    """No class known (the CLI, a bare Database): keys found in rows get UNKNOWN_RULE."""

    limited = False

    def concurrency(self, class_name: str) -> ConcurrencyRule:
        return UNKNOWN_RULE

    def queue_rule(self, queue_name: str) -> ConcurrencyRule | None:
        return None


NO_FLOW_RULES = NoFlowRules()


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """A job this process holds a claim on (a row in claimed_executions)."""

    id: int
    queue_name: str
    class_name: str
    arguments: str | None
    priority: int
    active_job_id: str | None
    scheduled_at: datetime | None
    concurrency_key: str | None
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    exception_class: str
    message: str
    backtrace: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Finished:
    """What finish_many did: the jobs it finished and the claims it no longer held."""

    job_ids: tuple[int, ...]
    lost: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Pruned:
    """What prune_dead did: processes removed, claims put back to ready, claims failed."""

    process_ids: tuple[int, ...] = ()
    released: tuple[int, ...] = ()
    failed: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    kind: str
    name: str
    pid: int
    hostname: str
    metadata: str | None = None
    supervisor_id: int | None = None


@dataclass(frozen=True, slots=True)
class QueueSelector:
    """The queues a worker takes jobs from, in priority order.

    Each entry is an exact queue name, a `prefix*` (a literal prefix, not a LIKE
    pattern) or `*` for every queue. Order matters: earlier entries are drained first.
    """

    patterns: tuple[str, ...] = ("*",)
    _exact: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.patterns:
            object.__setattr__(self, "patterns", ("*",))
        object.__setattr__(self, "_exact", frozenset(p for p in self.patterns if not p.endswith("*")))

    @classmethod
    def parse(cls, value: str | list[str] | tuple[str, ...] | None) -> QueueSelector:
        if value is None:
            return cls()
        items = value.split(",") if isinstance(value, str) else list(value)
        return cls(tuple(s.strip() for s in items if s and s.strip()))

    @property
    def is_all(self) -> bool:
        return "*" in self.patterns

    def matches(self, queue_name: str) -> bool:
        if self.is_all or queue_name in self._exact:
            return True
        return any(p.endswith("*") and queue_name.startswith(p[:-1]) for p in self.patterns)


class CommitSignal(Protocol):
    """Calls back when anyone may have committed (Dialect.commit_signal): an idle worker
    sleeps until then instead of ticking."""

    def start(self, on_change: Callable[[], None]) -> bool:
        """Begin calling `on_change` after commits; False if it cannot (then nothing runs)."""

    def close(self) -> None: ...
