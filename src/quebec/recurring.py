"""Recurring tasks above the store: the job a firing enqueues, and the operations on tasks
that `qc.*`, the scheduler and the CLI share."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from quebec import enqueuing
from quebec.enqueuing import Sealer
from quebec.errors import ConfigError
from quebec.identifiers import queue_name as valid_queue
from quebec.job import ActiveJob, BaseClass
from quebec.registry import Registry
from quebec.schedules import Interval, NextRun, NextRunFunction, RecurringTask, parse
from quebec.store import Database, recurring
from quebec.types import NewJobs

log = logging.getLogger("quebec.scheduler")
ScheduleLike = str | Interval | NextRun
# The class-attribute form: `class Cleanup(BaseClass): recurring_schedule = "every hour"`.
CLASS_SCHEDULE, CLASS_ARGS, CLASS_KEY = "recurring_schedule", "recurring_args", "recurring_key"


def job_for(
    task: RecurringTask,
    cls: type[BaseClass],
    *,
    run_at: datetime,
    now: datetime,
    forced_queue: str | None,
    sealer: Sealer,
) -> NewJobs:
    """The job row a run of `task` inserts: the class's own queue and priority unless the
    task gives them, scheduled at the run time, as any enqueue plans it."""
    options: dict[str, Any] = {"wait_until": run_at.replace(tzinfo=UTC)}  # aware: naive ones are warned about
    if task.queue_name is not None:
        options["queue"] = task.queue_name
    if task.priority is not None:
        options["priority"] = task.priority
    job: ActiveJob = cls.set(**options).build(*task.arguments)
    rows, _ = enqueuing.plan([job], now, forced_queue, sealer)  # encrypted as any enqueue of the class
    return rows


def schedule_text(schedule: object, now: datetime) -> str:
    """The stored form of what qc.schedule() was given; an interval or next-run function
    without a start starts now (to the second), so every scheduler computes the same times."""
    if isinstance(schedule, Interval | NextRun) and schedule.start is None:
        start = now.replace(microsecond=0)
        schedule = (
            Interval(schedule.every, start, schedule.max_count)
            if isinstance(schedule, Interval)
            else NextRun(schedule.name, start, schedule.max_count)
        )
    if isinstance(schedule, Interval | NextRun):
        return schedule.text
    if isinstance(schedule, str):
        return " ".join(schedule.split())
    raise ConfigError(
        f"a schedule is a string ('every 5 minutes', '0 9 * * * Europe/Berlin'), a quebec.Interval or a "
        f"quebec.NextRun, got {schedule!r}"
    )


def dynamic_task(
    key: object,
    job_class: object,
    schedule: object,
    *,
    args: Sequence[Any] = (),
    queue: str | None = None,
    priority: int | None = None,
    description: str | None = None,
    now: datetime,
    functions: Mapping[str, NextRunFunction],
) -> RecurringTask:
    """The row qc.schedule() writes, every argument checked; ConfigError names the mistake."""
    if not isinstance(key, str) or not key.strip():
        raise ConfigError(f"qc.schedule() takes a task key (a non-empty str) first, got {key!r}")
    if not (isinstance(job_class, type) and issubclass(job_class, BaseClass)):
        raise ConfigError(f"qc.schedule({key!r}, …) takes a job class (a quebec.BaseClass subclass), got {job_class!r}")
    text = schedule_text(schedule, now)
    try:
        parse(text, functions)
    except ValueError as exc:
        raise ConfigError(f"qc.schedule({key!r}, …): {exc}") from None
    if isinstance(args, str | bytes) or not isinstance(args, Sequence):
        raise ConfigError(f"qc.schedule({key!r}, …, args=…) takes a list of positional arguments, got {args!r}")
    if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)):
        raise ConfigError(f"qc.schedule({key!r}, …, priority=…) must be an integer, got {priority!r}")
    return RecurringTask(
        key=key,
        schedule=text,
        class_name=job_class.__qualname__,
        arguments=tuple(args),
        queue_name=None if queue is None else valid_queue(queue),
        priority=priority,
        static=False,
        description=description,
    )


def class_tasks(
    classes: Iterable[type[BaseClass]], now: datetime, functions: Mapping[str, NextRunFunction]
) -> list[RecurringTask]:
    """The tasks registered classes declare with `recurring_schedule` (key: `recurring_key` or
    the class's qualname; arguments: `recurring_args`)."""
    found = []
    for cls in classes:
        schedule = getattr(cls, CLASS_SCHEDULE, None)
        if schedule is None:
            continue
        key = getattr(cls, CLASS_KEY, None) or cls.__qualname__
        found.append(
            dynamic_task(key, cls, schedule, args=tuple(getattr(cls, CLASS_ARGS, ())), now=now, functions=functions)
        )
    return found


@dataclass(frozen=True, slots=True)
class Listed:
    """A task as `python -m quebec recurring list` shows it."""

    task: RecurringTask
    next_run: datetime | None
    last_run: datetime | None
    problem: str | None


def listing(db: Database, functions: Mapping[str, NextRunFunction]) -> list[Listed]:
    with_pause = db.read(recurring.has_pause_column)
    tasks = db.read(recurring.load, with_pause=with_pause)
    last = db.read(recurring.last_runs)
    now = db.clock.now()
    out = []
    for task in tasks:
        try:
            nxt, problem = parse(task.schedule, functions).next_after(now), None
        except ValueError as exc:
            nxt, problem = None, str(exc)
        out.append(Listed(task, nxt, last.get(task.key), problem))
    return out


def run_now(db: Database, registry: Registry, key: str, *, forced_queue: str | None, sealer: Sealer) -> bool:
    """Enqueue `key`'s job now, off schedule (recorded as a run at now); False for an unknown key."""
    if not isinstance(key, str):
        raise TypeError(f"run_recurring_now takes a task key (str), got {key!r}")
    task = db.read(recurring.find, key=key)
    if task is None:
        return False
    cls = registry.get(task.class_name)
    if cls is None:
        raise ConfigError(
            f"recurring task {key!r} names class {task.class_name!r}, which is not registered in this process; "
            f"register it (@qc.register_job) or run the task from a process that has it"
        )
    now = db.clock.now()
    job = job_for(task, cls, run_at=now, now=now, forced_queue=forced_queue, sealer=sealer)
    return recurring.fire(db, task_key=key, run_at=now, job=job) is not None


def pause_state(db: Database, key: str, *, enabled: bool, paused: bool | None) -> bool:
    """pause (paused=True), resume (False) or read (None) one task's pause, as the wheel does:
    RuntimeError when recurring_pause is off, LookupError for an unknown key."""
    if not enabled:
        raise RuntimeError(
            "Pausing recurring tasks is not enabled: construct Quebec with recurring_pause=True or set "
            "QUEBEC_RECURRING_PAUSE=true"
        )
    if not isinstance(key, str):
        raise TypeError(f"a recurring task key is a str, got {key!r}")
    db.transact(recurring.add_pause_column)
    if paused is None:
        task = db.read(recurring.find, key=key, with_pause=True)
        if task is None:
            raise LookupError(f'No recurring task with key "{key}"')
        return task.paused_at is not None
    changed = db.transact(recurring.set_paused, key=key, paused=paused)
    if changed is None:
        raise LookupError(f'No recurring task with key "{key}"')
    return changed
