"""From ActiveJobs to the rows the store inserts, and the store's answer back onto the jobs.

A batch is worked out per run of alike jobs: jobs of one class built with the same options
share their queue, priority, time and envelope layout (unless queue_as is a function of
the arguments), so a 10,000-job perform_all_later resolves once and encodes only each
job's arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from itertools import repeat

from quebec.arguments import FreshEnvelope
from quebec.errors import EnqueueError
from quebec.flow_options import concurrency_key_of, limited, unique_of
from quebec.identifiers import queue_name as valid_queue
from quebec.job import ActiveJob, BaseClass
from quebec.job_ids import new_active_job_ids
from quebec.options import JobOptions
from quebec.types import EnqueuedJobs, NewJobs

# Per class: the function that encrypts its argument list, or None to store it plain.
Sealer = Callable[[type[BaseClass]], Callable[[str], str] | None]


class Plan:
    """Where and when a job goes, and its envelope layout: shared by a batch's alike jobs."""

    __slots__ = ("queue_name", "priority", "scheduled_at", "class_name", "render")

    def __init__(self, job: ActiveJob, now: datetime, forced: str | None, sealer: Sealer | None = None) -> None:
        job.resolve(now=now, forced_queue=forced)
        assert job.queue_name is not None and job.priority is not None and job.scheduled_at is not None
        self.queue_name, self.priority, self.scheduled_at = valid_queue(job.queue_name), job.priority, job.scheduled_at
        cls = job.job_class
        # The wheel keeps the class's own queue and priority inside, the effective ones outside.
        inner_queue = forced or (
            job.queue_name if job.options.queue is None else cls.resolve_queue(*job.args, **job.kwargs)
        )
        envelope = FreshEnvelope(
            class_name=job.class_name,
            queue_name=job.queue_name,
            priority=job.priority,
            enqueued_at=now,
            class_queue_name=inner_queue,
            class_priority=cls.resolve_priority(),
            seal=None if sealer is None else sealer(cls),
        )
        self.class_name, self.render = envelope.class_name, envelope.render


def plan(
    batch: Sequence[ActiveJob], now: datetime, forced: str | None, sealer: Sealer | None = None
) -> tuple[NewJobs, list[Plan]]:
    """The rows to insert for `batch`, and each job's plan (for settle). `sealer` says, per
    class, how to encrypt its arguments (None: stored plain)."""
    if not all(map(isinstance, batch, repeat(ActiveJob))):
        wrong = next(job for job in batch if not isinstance(job, ActiveJob))
        raise EnqueueError(f"perform_all_later takes jobs made with Job.build(...), got {wrong!r}")
    plans = _plans(batch, now, forced, sealer)
    ids = new_active_job_ids(len(batch))
    rows = NewJobs(
        [p.queue_name for p in plans],
        [p.class_name for p in plans],
        [
            p.render(active_job_id, job.args, job.kwargs)
            for job, p, active_job_id in zip(batch, plans, ids, strict=True)
        ],
        [p.priority for p in plans],
        ids,
        [p.scheduled_at for p in plans],
        _concurrency_keys(batch),
    )
    if any(getattr(cls, "unique_for", None) is not None for cls in {job.job_class for job in batch}):
        held = [unique_of(job.job_class, job.args, job.kwargs, now) for job in batch]
        rows.unique_keys = [h[0] if h else None for h in held]
        rows.unique_until = [h[1] if h else None for h in held]
    return rows, plans


def _concurrency_keys(batch: Sequence[ActiveJob]) -> list[str | None]:
    """Each job's stored concurrency key (None for classes without a limit: no call per job)."""
    if not any(limited(cls) for cls in {job.job_class for job in batch}):
        return [None] * len(batch)
    return [concurrency_key_of(job.job_class, job.args, job.kwargs) for job in batch]


def settle(batch: Sequence[ActiveJob], plans: Sequence[Plan], enqueued: EnqueuedJobs, arguments: Sequence[str]) -> None:
    """Write what the store answered (ids, states), what was resolved and what was stored onto the jobs."""
    for job, p, job_id, active_job_id, state, stored in zip(
        batch, plans, enqueued.ids, enqueued.active_job_ids, enqueued.states, arguments, strict=True
    ):
        job.id, job.active_job_id, job.state = job_id, active_job_id, state.value
        job.envelope = stored
        job.queue_name, job.priority, job.scheduled_at = p.queue_name, p.priority, p.scheduled_at


def _plans(batch: Sequence[ActiveJob], now: datetime, forced: str | None, sealer: Sealer | None) -> list[Plan]:
    plans: list[Plan] = []
    cls: type[BaseClass] | None = None
    options: JobOptions | None = None
    shared: Plan | None = None
    for job in batch:
        if job.job_class is not cls or job.options is not options or shared is None:
            cls, options = job.job_class, job.options
            shared = None if callable(cls.queue_as) else Plan(job, now, forced, sealer)
            plans.append(shared or Plan(job, now, forced, sealer))
        else:
            plans.append(shared)
    return plans
