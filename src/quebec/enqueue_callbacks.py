"""A job class's enqueue callbacks, run by `perform_later` around the insert of its one job.

`before_enqueue(self)` runs first, then `around_enqueue(self)`, a generator whose `yield` is
the insert, then `after_enqueue(self)`. `self` is an instance of the job class showing what
the row will hold, as the wheel shows it: `id` (None until inserted), `active_job_id`,
`arguments` (the envelope's arguments object, JSON), `queue_name`, `priority`, `scheduled_at`,
`executions` 0 and the other ActiveJob values.

Before the insert: `raise quebec.AbortEnqueue` in before_enqueue or around_enqueue, or an
around_enqueue that returns without yielding, skips the job (nothing inserted; perform_later
returns it with `id` None); any other error propagates and nothing is inserted. After the
insert the job is in the database whatever a callback does: an error in the rest of
around_enqueue or in after_enqueue is logged, not raised, so that no caller enqueues the
job twice. `perform_all_later` runs no enqueue callbacks, as the wheel.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from quebec.errors import AbortEnqueue, ConfigError, EnqueueError
from quebec.logger import job_logger

if TYPE_CHECKING:
    from quebec.job import ActiveJob
    from quebec.types import NewJobs

log = logging.getLogger("quebec.enqueue")
CALLBACKS = ("before_enqueue", "around_enqueue", "after_enqueue")
# What a callback may read on self but not change (the job is already planned), with the
# set() keyword that does change it.
_PLANNED = {"queue_name": "queue", "priority": "priority", "scheduled_at": "wait_until"}


def has_enqueue_callbacks(cls: type) -> bool:
    return any(getattr(cls, name, None) is not None for name in CALLBACKS)


def check_enqueue_callbacks(cls: type, name: str) -> None:
    """At class definition: each callback is a function, and only around_enqueue yields."""
    for callback in CALLBACKS:
        fn = getattr(cls, callback, None)
        if fn is None:
            continue
        if not callable(fn):
            raise ConfigError(f"{name}.{callback} must be a method, got {fn!r}")
        generator = inspect.isgeneratorfunction(fn)
        if callback == "around_enqueue" and not generator:
            raise ConfigError(
                f"{name}.around_enqueue must be a generator function that yields once (code before `yield` "
                f"runs before the insert, code after it runs after)"
            )
        if callback != "around_enqueue" and generator:
            raise ConfigError(f"{name}.{callback} yields, so its body would never run; only around_enqueue yields")


def run(job: ActiveJob, rows: NewJobs, insert: Callable[[], object]) -> ActiveJob:
    """Insert `job` (planned as `rows`) through `insert`, with its class's enqueue callbacks."""
    job.active_job_id, job.envelope = rows.active_job_ids[0], rows.arguments[0]
    me = _instance(job)
    name = job.class_name
    around = None
    try:
        before = getattr(me, "before_enqueue", None)
        if before is not None:
            before()
            _check_unchanged(me, job, "before_enqueue")
        if getattr(me, "around_enqueue", None) is not None:
            around = me.around_enqueue()
            if not inspect.isgenerator(around):
                raise ConfigError(f"{name}.around_enqueue must be a generator function that yields once")
            try:
                next(around)
            except StopIteration:
                log.info("job.enqueue_aborted class=%s: around_enqueue did not yield", name)
                return job
            _check_unchanged(me, job, "around_enqueue")
    except AbortEnqueue as abort:
        log.info("job.enqueue_aborted class=%s: %s", name, str(abort) or "AbortEnqueue")
        return job
    try:
        insert()
    except BaseException:
        if around is not None:
            around.close()  # runs its finally blocks; the job is not in the database
        raise
    vars(me).update(id=job.id, active_job_id=job.active_job_id)
    if around is not None:
        _resume(around, name)
    after = getattr(me, "after_enqueue", None)
    if after is not None:
        try:
            after()
        except Exception:
            log.exception("hook.failed hook=%s.after_enqueue job_id=%s (the job is enqueued)", name, job.id)
    return job


def _instance(job: ActiveJob) -> Any:
    me = object.__new__(job.job_class)
    vars(me).update(
        id=None,
        active_job_id=job.active_job_id,
        arguments=job.arguments,
        class_name=job.class_name,
        queue_name=job.queue_name,
        priority=job.priority,
        scheduled_at=job.scheduled_at,
        executions=0,
        created_at=None,
        updated_at=None,
        finished_at=None,
        concurrency_key=None,
        batch_id=None,
        callback_batch_id=None,
        concurrency_on_conflict=job.concurrency_on_conflict,
        logger=job_logger(job.class_name, job.active_job_id or ""),
    )
    return me


def _check_unchanged(me: Any, job: ActiveJob, callback: str) -> None:
    for attr, keyword in _PLANNED.items():
        if getattr(me, attr) != getattr(job, attr):
            raise EnqueueError(
                f"{job.class_name}.{callback} set self.{attr} to {getattr(me, attr)!r}, which does not change "
                f"the job; choose it with {job.class_name}.set({keyword}=...) instead"
            )


def _resume(around: Any, name: str) -> None:
    """The rest of around_enqueue, after the insert: errors are logged, a second yield is cut short."""
    try:
        next(around)
    except StopIteration:
        return
    except Exception:
        log.exception("hook.failed hook=%s.around_enqueue after the insert (the job is enqueued)", name)
        return
    around.close()
    log.warning("hook.misused hook=%s.around_enqueue: it yielded more than once", name)
