"""Quebec's recurring-task methods (docs/recurring.md), mixed into `Quebec` to keep app.py small."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from quebec import recurring as ops
from quebec.errors import ConfigError
from quebec.schedules import NextRunFunction, RecurringTask
from quebec.store import recurring

if TYPE_CHECKING:
    from quebec.config import Settings
    from quebec.registry import Registry
    from quebec.sealing import Sealing
    from quebec.store import Database


class RecurringMethods:
    db: Database
    settings: Settings
    registry: Registry
    sealing: Sealing

    @property
    def next_run_functions(self) -> dict[str, NextRunFunction]:
        return self.registry.next_run_functions

    def next_run_function(self, name: str) -> Callable[[NextRunFunction], NextRunFunction]:
        """Decorator: `@qc.next_run_function("business_days")` registers `fn(previous) -> next | None`
        for schedules `quebec.NextRun("business_days", start=…)`. Every scheduler process must
        register it (same name, same code) to fire such a task."""
        if not isinstance(name, str) or not name.isidentifier():
            raise ConfigError(f"a next-run function name must be an identifier such as 'business_days', got {name!r}")

        def register(fn: NextRunFunction) -> NextRunFunction:
            if not callable(fn):
                raise ConfigError(f"@qc.next_run_function({name!r}) decorates a function, got {fn!r}")
            self.next_run_functions[name] = fn
            return fn

        return register

    def schedule(
        self,
        key: str,
        job_class: type[Any],
        schedule: Any,
        *,
        args: Sequence[Any] = (),
        queue: str | None = None,
        priority: int | None = None,
        description: str | None = None,
    ) -> RecurringTask:
        """Add or replace the dynamic recurring task `key`: `job_class` with `args` on `schedule`
        (a string, quebec.Interval or quebec.NextRun). Every scheduler sees it within seconds."""
        task = ops.dynamic_task(
            key,
            job_class,
            schedule,
            args=args,
            queue=queue,
            priority=priority,
            description=description,
            now=self.db.clock.now(),
            functions=self.next_run_functions,
        )
        existing = self.db.read(recurring.find, key=task.key)
        if existing is not None and existing.static:
            raise ConfigError(
                f"recurring task {task.key!r} is a static task from recurring.yml; change it there, or "
                f"schedule under another key"
            )
        self.db.transact(recurring.upsert, task=task)
        self._wake_scheduler()
        return task

    def unschedule(self, key: str) -> bool:
        """Remove the dynamic task `key`; False when there was none (static tasks live in recurring.yml)."""
        return self.db.transact(recurring.remove, key=key, static=False)

    def _wake_scheduler(self) -> None:
        """This process's scheduler, if it runs, reads the tasks now rather than at its next poll."""
        supervisor = getattr(self, "_runtime", None)
        scheduler = getattr(supervisor, "scheduler", None)
        if scheduler is not None:
            scheduler.wake_up()

    def recurring_tasks(self) -> list[RecurringTask]:
        """Every recurring task in the table, static and dynamic, by key."""
        return self.db.read(recurring.load, with_pause=self.db.read(recurring.has_pause_column))

    def recurring_task_of(self, job_id: int) -> str | None:
        """The key of the recurring task that enqueued job `job_id` (None for other jobs)."""
        return self.db.read(recurring.task_of, job_id=job_id)

    def run_recurring_now(self, key: str) -> bool:
        """Enqueue `key`'s job now, off schedule; False when no task has that key."""
        return ops.run_now(
            self.db, self.registry, key, forced_queue=self.settings.force_override_queue, sealer=self.sealing.sealer
        )

    def pause_recurring(self, key: str) -> bool:
        """Skip `key`'s runs until resumed (needs recurring_pause=True); False when already paused."""
        return ops.pause_state(self.db, key, enabled=self.settings.recurring_pause, paused=True)

    def resume_recurring(self, key: str) -> bool:
        """Resume `key`: its next run after now fires, missed ones never; False when not paused."""
        return ops.pause_state(self.db, key, enabled=self.settings.recurring_pause, paused=False)

    def recurring_paused(self, key: str) -> bool:
        return ops.pause_state(self.db, key, enabled=self.settings.recurring_pause, paused=None)

    def paused_recurring_tasks(self) -> list[str]:
        """Keys of the paused tasks, sorted (needs recurring_pause=True)."""
        if not self.settings.recurring_pause:
            ops.pause_state(self.db, "", enabled=False, paused=None)  # raises the wheel's RuntimeError
        self.db.transact(recurring.add_pause_column)
        return self.db.read(recurring.paused_keys)
