"""Scheduler: fire recurring tasks once per run time, however many schedulers run.

At its first round it writes recurring.yml's tasks into recurring_tasks (static rows; static
rows the file no longer has are deleted) and the tasks job classes declare (dynamic rows).
Each round then reads the table, and for every task whose latest run time is past and not
yet seen enqueues that run through `recurring.fire` (job + (task_key, run_at) in one
transaction; the unique index lets one scheduler win). Only the latest run is enqueued:
a scheduler that was down does not replay what it missed, it enqueues the most recent run.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime

from quebec import recurring as tasks_ops
from quebec.config import Settings
from quebec.config.recurring import StaticTasks, load_static
from quebec.engine.runnable import Runnable
from quebec.enqueuing import Sealer
from quebec.registry import Registry
from quebec.schedules import NextRunFunction, RecurringTask, Schedule, parse
from quebec.sealing import Sealing
from quebec.store import Database, recurring

log = logging.getLogger("quebec.scheduler")


class Scheduler(Runnable):
    name = "scheduler"

    def __init__(
        self,
        db: Database,
        *,
        registry: Registry,
        static: StaticTasks,
        functions: Mapping[str, NextRunFunction],
        forced_queue: str | None,
        add_pause_column: bool,
        sealer: Sealer,
        polling_interval: float = 5.0,
        on_enqueued: Callable[[set[str]], None] = lambda queues: None,
    ) -> None:
        super().__init__()
        self._db = db
        self._registry = registry
        self._static = static
        self._functions = functions
        self._forced = forced_queue
        self._sealer = sealer
        self._add_pause_column = add_pause_column
        # Longest sleep: how soon a task added or resumed elsewhere is seen.
        self.polling_interval = polling_interval
        self._on_enqueued = on_enqueued
        self._started = False
        self._with_pause = False
        self._cursor: dict[str, datetime] = {}  # per key: the latest run time already handled
        self._parsed: dict[tuple[str, str], Schedule | None] = {}
        self._warned: set[tuple[str, str]] = set()
        # (key, run_at, job id) of the latest runs this scheduler enqueued, for logs and tests
        self.fired: deque[tuple[str, datetime, int]] = deque(maxlen=1000)

    def run_once(self) -> float:
        if not self._started:
            self._start()
        now = self._db.clock.now()
        rows = self._db.read(recurring.load, with_pause=self._with_pause)
        soonest = self.polling_interval
        for task in rows:
            schedule = self._schedule(task)
            if schedule is None:
                continue
            try:
                latest, following = schedule.latest_until(now), schedule.next_after(now)
            except Exception as exc:  # noqa: BLE001 - a user's next-run function failed; the others go on
                self._warn(task, "function", f"recurring task {task.key!r} is skipped: its schedule raised {exc!r}")
                continue
            if latest is not None:
                self._fire_due(task, latest, now)
            if following is not None:
                soonest = min(soonest, (following - now).total_seconds())
        return max(soonest, 0.0)

    def _start(self) -> None:
        db, static = self._db, self._static
        for sentence in static.problems:
            log.error("recurring.config_error: %s", sentence)
        if static.tasks is not None:
            changed, deleted = db.transact(recurring.sync_static, tasks=static.tasks)
            log.info(
                "recurring.loaded file=%s tasks=%d changed=%d stale_deleted=%d",
                static.path,
                len(static.tasks),
                changed,
                deleted,
            )
        for task in tasks_ops.class_tasks(self._registry.classes(), db.clock.now(), self._functions):
            db.transact(recurring.upsert, task=task)
        if self._add_pause_column:
            db.transact(recurring.add_pause_column)
        self._with_pause = db.read(recurring.has_pause_column)
        self._cursor.update(db.read(recurring.last_runs))
        self._started = True

    def _schedule(self, task: RecurringTask) -> Schedule | None:
        """The task's parsed schedule, or None (warned once) when this process cannot fire it."""
        cached = (task.key, task.schedule)
        if cached not in self._parsed:
            try:
                self._parsed[cached] = parse(task.schedule, self._functions)
            except ValueError as exc:
                self._parsed[cached] = None
                self._warn(task, "schedule", f"recurring task {task.key!r} is skipped: {exc}")
        if self._parsed[cached] is not None and self._registry.get(task.class_name) is None:
            self._warn(
                task,
                "class",
                f"recurring task {task.key!r} is skipped by this scheduler: its class {task.class_name!r} is not "
                f"registered in this process; register it (@qc.register_job or python -m quebec <package>)",
            )
            return None
        return self._parsed[cached]

    def _fire_due(self, task: RecurringTask, latest: datetime, now: datetime) -> None:
        # A task seen for the first time: runs before its last change (or last recorded
        # run) are not ours to enqueue.
        cursor = max(filter(None, (self._cursor.get(task.key), task.updated_at)), default=now)
        if latest <= cursor:
            return
        self._cursor[task.key] = latest
        if task.paused_at is not None:
            log.info("recurring.paused key=%s run_at=%s skipped", task.key, latest)
            return
        cls = self._registry.get(task.class_name)
        assert cls is not None  # _schedule() returned None otherwise
        job = tasks_ops.job_for(task, cls, run_at=latest, now=now, forced_queue=self._forced, sealer=self._sealer)
        job_id = recurring.fire(self._db, task_key=task.key, run_at=latest, job=job)
        if job_id is None:
            log.debug("recurring.taken key=%s run_at=%s (another scheduler enqueued it)", task.key, latest)
            return
        self.fired.append((task.key, latest, job_id))
        log.info("recurring.enqueued key=%s run_at=%s job_id=%d", task.key, latest, job_id)
        self._on_enqueued(set(job.queue_names))

    def _warn(self, task: RecurringTask, what: str, sentence: str) -> None:
        if (task.key, what) not in self._warned:
            self._warned.add((task.key, what))
            log.warning("recurring.skipped: %s", sentence)


def build_scheduler(
    db: Database,
    settings: Settings,
    registry: Registry,
    functions: Mapping[str, NextRunFunction],
    on_enqueued: Callable[[set[str]], None],
) -> Scheduler:
    """The scheduler of `settings`: recurring.yml read now (its mistakes are logged at the first round)."""
    static = load_static(settings.recurring_schedule, settings.env, functions=functions)
    return Scheduler(
        db,
        registry=registry,
        static=static,
        functions=functions,
        forced_queue=settings.force_override_queue,
        add_pause_column=settings.recurring_pause,
        sealer=Sealing.from_settings(settings).sealer,
        on_enqueued=on_enqueued,
    )
