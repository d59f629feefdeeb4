"""Quebec: settings, Database, registry and hooks, wired together. It delegates; it does not decide."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from quebec import enqueue_callbacks, enqueuing, waiting
from quebec.app_batches import BatchMethods
from quebec.app_control_plane import ControlPlaneMethods
from quebec.app_recurring import RecurringMethods
from quebec.batches import batch_route
from quebec.config import Settings, load_settings, run_options
from quebec.engine.drain import Drain
from quebec.engine.executor import Executor
from quebec.engine.forking import ForkSupervisor
from quebec.engine.metrics import JobMetrics, MeteredExecutor
from quebec.engine.oneshot import DrainReport, OneShot
from quebec.engine.rate_limiter import RateLimiter
from quebec.engine.runtime import ProcessRuntime
from quebec.engine.unsupported import fork_mode, refuse_unappliable
from quebec.engine.waiter import Waiter
from quebec.errors import ConfigError, DatabaseUnavailable, EnqueueError
from quebec.events import JobEvent, JobEventKind, Subscriber
from quebec.execution import Execution
from quebec.flow_rules import RegistryFlowRules
from quebec.function_jobs import FunctionJob, job_class_for
from quebec.hooks import Hooks
from quebec.job import ActiveJob, BaseClass, JobDescriptor, active_jobs
from quebec.metrics_control import JobMetricsControl
from quebec.operations import Operations
from quebec.registry import Registry
from quebec.sealing import Sealing
from quebec.store import Database, health, jobs

log = logging.getLogger("quebec")
J = TypeVar("J", bound=type[BaseClass])
F = TypeVar("F", bound=Callable[..., Any])
_LAZY = threading.Lock()  # guards the lazy creation of an instance's JobMetrics


class Quebec(Operations, JobMetricsControl, RecurringMethods, ControlPlaneMethods, BatchMethods):
    """One per process. `Quebec(url, **options)`; options as in spec/configuration.md."""

    # Runtime state that exists before any start(); class defaults, set per instance when used.
    _quiet_requested = False
    _metrics: JobMetrics | None = None
    _drain: Drain | None = None
    _waiter: Waiter | None = None

    def __init__(self, database_url: str | None = None, /, **options: Any) -> None:
        if "database_url" in options and database_url is not None:
            raise ConfigError("pass the database URL once: either positionally or as database_url=")
        if database_url is not None:
            options["database_url"] = database_url
        self.settings: Settings = load_settings(options)
        self.registry = Registry()
        flow = RegistryFlowRules(
            self.registry,
            default_duration=self.settings.default_concurrency_control_period,
            queue_limits=self.settings.experimental_queue_concurrency,
        )
        self.db = Database.from_settings(self.settings, flow=flow)
        self.sealing = Sealing.from_settings(self.settings)  # a bad key fails here, in one sentence
        self.db.connect()
        self.hooks = Hooks()
        self._runtime: ProcessRuntime | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"Quebec<{self.db.display_url}>"

    # -- registration ---------------------------------------------------------------------
    def register_job(self, cls: J) -> J:
        """Decorator: register a job class and bind `Cls.perform_later(...)` to this instance."""
        self.registry.add(cls)
        cls._quebec = self
        return cls

    def register_job_class(self, cls: J) -> J:
        return self.register_job(cls)

    def job(self, fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
        """Decorator: make a function (sync or `async def`) a job registered here.

        `@qc.job` or `@qc.job(queue="mail", priority=5, retry_on=[...], timeout=30, ...)`; the
        options are the class attributes of a job class (`queue` for `queue_as`). The result is
        callable as the function was, and has `.perform_later()`, `.set()` and `.build()`.
        """

        def make(function: Callable[..., Any]) -> FunctionJob:
            return FunctionJob(function, self.register_job(job_class_for(function, options)))

        return make if fn is None else make(fn)

    def discover_jobs(self, *packages: str, recursive: bool = True, on_error: str = "raise") -> list[type[BaseClass]]:
        found = self.registry.discover(*packages, recursive=recursive, on_error=on_error)
        for cls in found:
            cls._quebec = self
        return found

    # -- enqueue --------------------------------------------------------------------------
    def enqueue_jobs(self, batch: Sequence[ActiveJob], *, callbacks: bool = False) -> list[ActiveJob]:
        """Insert jobs in one transaction; returns them with ids, in input order.

        callbacks=True (perform_later's one job): its class's enqueue callbacks run around the insert.
        """
        if not batch:
            return []
        rows, plans = enqueuing.plan(
            batch, self.db.clock.now(), self.settings.force_override_queue, self.sealing.sealer
        )

        route = batch_route(self.db, batch)  # None outside `with qc.batch()` / `batch.enqueue()`

        def insert() -> list[ActiveJob]:
            enqueued = self.db.transact(jobs.enqueue_many, rows) if route is None else route(rows)
            enqueuing.settle(batch, plans, enqueued, rows.arguments)
            for job in batch:
                job.quebec = self  # job.wait() asks this instance
            if self.db.events:
                self.db.events.emit(
                    JobEvent(JobEventKind.ENQUEUED, job.id, job.class_name, job.queue_name)
                    for job in batch
                    if job.id is not None
                )
            if self._runtime is not None:
                self._runtime.wake_workers(set(rows.queue_names))
            return list(batch)

        if callbacks:
            return [enqueue_callbacks.run(batch[0], rows, insert)]
        return insert()

    def perform_all_later(self, batch: Iterable[JobDescriptor]) -> list[ActiveJob]:
        """Bulk enqueue: `qc.perform_all_later([Job.build(1), Job.build(2), ...])`. No enqueue callbacks run."""
        return self.enqueue_jobs(active_jobs(batch))

    def perform_later(self, klass: type[BaseClass], *args: Any, **kwargs: Any) -> ActiveJob:
        """`klass.perform_later(*args, **kwargs)` on this instance, whichever Quebec the class is registered with."""
        if not (isinstance(klass, type) and issubclass(klass, BaseClass)):
            raise EnqueueError(f"qc.perform_later takes a job class (a quebec.BaseClass subclass) first, got {klass!r}")
        return klass.perform_later(self, *args, **kwargs)

    # -- testing: drain and perform in this thread ------------------------------------------
    def drain_one(self) -> Execution:
        """Claim one ready job as a worker would (due scheduled jobs are dispatched first) and
        return its Execution; `.perform()` runs it. Nothing ready → RuntimeError."""
        executions = self.drain_batch(1)
        if not executions:
            raise RuntimeError(
                f"No ready job to claim: no job is ready in queues {list(self.settings.worker_queues)} "
                f"(scheduled jobs not due yet, paused queues and claimed jobs are not drained)"
            )
        return executions[0]

    def drain_batch(self, batch_size: int) -> list[Execution]:
        """Claim up to `batch_size` ready jobs in one transaction, as a worker claims; [] when none."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"drain_batch(batch_size={batch_size!r}) needs a whole number of at least 1")
        drain = self._drainer()
        return [Execution(drain, job) for job in drain.claim(batch_size)]

    def drain_due(
        self, *, threads: int | None = None, max_jobs: int | None = None, max_seconds: float | None = None
    ) -> DrainReport:
        """Perform every job due now on `threads` worker threads (default: the settings'), then
        return what became of them (`python -m quebec <package> --once`); see engine/oneshot.py."""
        threads = run_options(None, threads)[1] or self.settings.worker_threads
        drain = OneShot(
            self.db,
            self.settings,
            self.registry,
            self._drainer(),
            threads=threads,
            max_jobs=max_jobs,
            max_seconds=max_seconds,
        )
        return drain.run()

    def _drainer(self) -> Drain:
        with _LAZY:
            if self._drain is None:
                executor = Executor(self.registry, self.db.clock, self.sealing, self.db.events)
                metrics = self._metrics
                if metrics is not None:
                    executor = MeteredExecutor(executor, metrics, lambda: 1)
                limiter = RateLimiter(self.db, self.registry, self.sealing.cipher)
                self._drain = Drain(self.db, self.settings, executor, limiter.hold_back)
            return self._drain

    # -- results and waiting ----------------------------------------------------------------
    def wait_for_jobs(self, jobs: Iterable[ActiveJob | int], timeout: float | None = None) -> list[Any]:
        """Block until every job is done; their results, in order.

        Raises the first (in order) job's JobFailed / JobDiscarded / JobCancelled once all are
        done, UnknownJob for an id these tables do not have, and WaitTimeout when `timeout`
        seconds pass first. A retried job is followed to its last attempt.
        """
        ids = [_job_id(job) for job in jobs]
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0):
            raise ValueError(f"wait timeout={timeout!r} must be seconds ≥ 0, or None to wait as long as it takes")
        progress, pending = self._waiting().wait(ids, timeout)
        if pending:
            raise waiting.timed_out(progress, pending, timeout)
        return [waiting.result_of(progress[job_id], self.sealing.cipher) for job_id in ids]

    def wait_for_job(self, job: ActiveJob | int, timeout: float | None = None) -> Any:
        """One job's result (wait_for_jobs of one)."""
        return self.wait_for_jobs([job], timeout)[0]

    def _waiting(self) -> Waiter:
        with _LAZY:
            if self._waiter is None:
                self._waiter = Waiter(self.db, use_listen=self.settings.use_listen_notify)
            return self._waiter

    # -- schema ---------------------------------------------------------------------------
    def create_tables(self) -> bool:
        return self.db.create_tables()

    # -- running --------------------------------------------------------------------------
    def run(
        self,
        *,
        create_tables: bool = False,
        control_plane: str | None = None,
        spawn: Iterable[str] | None = None,
        threads: int | None = None,
    ) -> int:
        """Run worker, dispatcher and maintenance in this process until TERM/INT (blocking).

        With QUEBEC_SUPERVISOR=1 it forks queue.yml's plan instead (engine/forking.py): one
        process per worker and dispatcher entry copy, watched and replaced; spawn= is ignored.
        """
        refuse_unappliable(self.settings, forking=fork_mode(os.environ))
        if fork_mode(os.environ):
            dashboard = self._control_plane_process(control_plane)
            try:
                return self._run_forked(create_tables, spawn)
            finally:
                self._stop_control_plane_process(dashboard)
        self._runtime = self._new_runtime(create_tables, spawn, threads)
        self._serve_control_plane(control_plane)
        try:
            return self._runtime.run()
        finally:
            self._runtime = None
            self._quiet_requested = False
            self.stop_control_plane()

    def _run_forked(self, create_tables: bool, spawn: Iterable[str] | None) -> int:
        if spawn is not None:
            log.warning("supervisor.spawn_ignored spawn=%s: under QUEBEC_SUPERVISOR=1 queue.yml's plan decides", spawn)
        if create_tables:
            self.create_tables()

        def child(settings: Settings, role: str, threads: int | None, supervisor_id: int) -> int:
            runtime = ProcessRuntime(
                self.db,
                settings,
                self.registry,
                self.hooks,
                spawn=[role],
                threads=threads,
                metrics=self._job_metrics(),
                supervisor_id=supervisor_id,
            )
            self._runtime = runtime
            return runtime.run()

        return ForkSupervisor(self.db, self.settings, self.registry, child_runtime=child).run()

    def start(
        self,
        *,
        create_tables: bool = False,
        control_plane: str | None = None,
        spawn: Iterable[str] | None = None,
        threads: int | None = None,
    ) -> Quebec:
        """Run in a background thread and return at once (`qc.start().wait()`); stop with `qc.stop()`.

        Called on the main thread it handles signals as run() does (TERM/INT stop, USR1 quiet,
        USR2 job metrics) until it stops; elsewhere it handles none.
        """
        refuse_unappliable(self.settings, forking=False)
        if fork_mode(os.environ):
            log.warning(
                "supervisor.not_forking: QUEBEC_SUPERVISOR=1 applies to qc.run() and python -m quebec; "
                "qc.start() runs its components as threads of this process"
            )
        self._runtime = self._new_runtime(create_tables, spawn, threads)
        self._serve_control_plane(control_plane)
        try:
            self._runtime.start_background()
        except BaseException:
            self._runtime = None
            self.stop_control_plane()
            raise
        return self

    def _new_runtime(self, create_tables: bool, spawn: Iterable[str] | None, threads: int | None) -> ProcessRuntime:
        if self._runtime is not None and not self._runtime.stopped:
            raise RuntimeError("this Quebec is already running; call qc.stop() before starting it again")
        spawn, threads = run_options(spawn, threads)
        if create_tables:
            self.create_tables()
        runtime = ProcessRuntime(
            self.db,
            self.settings,
            self.registry,
            self.hooks,
            spawn=spawn,
            threads=threads,
            metrics=self._job_metrics(),
        )
        if self._quiet_requested:
            runtime.quiet()
        return runtime

    def stop(self, timeout: float | None = None) -> None:
        """Graceful shutdown of a runtime started with start() (or run() in another thread)."""
        runtime, self._runtime = self._runtime, None
        self._quiet_requested = False
        self.stop_control_plane()
        if runtime is not None:
            runtime.stop()
            runtime.join(timeout)

    graceful_shutdown = stop

    def wait(self, timeout: float | None = None) -> None:
        """Block until the runtime started with start() stops (a signal, or qc.stop() elsewhere)."""
        if self._runtime is not None:
            self._runtime.join(timeout)

    def close(self) -> None:
        self.stop()
        if self._drain is not None:
            self._drain.close()
        if self._waiter is not None:
            self._waiter.close()
        if self._metrics is not None:
            self._metrics.close()
        self.db.dispose()

    # -- runtime control --------------------------------------------------------------------
    def quiet(self) -> None:
        """Stop claiming new jobs; running ones finish (what USR1 does). Idempotent; before
        start() it makes the next start quiet."""
        self._quiet_requested = True
        if self._runtime is not None:
            self._runtime.quiet()

    @property
    def is_quiet(self) -> bool:
        return self._runtime.is_quiet if self._runtime is not None else self._quiet_requested

    def in_flight_count(self) -> int:
        """Jobs running on this process's worker threads now (busy threads)."""
        return self._runtime.in_flight_count() if self._runtime is not None else 0

    @property
    def worker_threads(self) -> int:
        """Worker threads this process runs (or will run): start(threads=) or the settings."""
        return self._runtime.worker_threads if self._runtime is not None else self.settings.worker_threads

    def ping(self) -> bool:
        """One database round trip: True when it answered; False (and an error logged) when not."""
        try:
            health.ping(self.db)
        except DatabaseUnavailable as exc:
            log.error("database.ping_failed: %s", exc)
            return False
        return True

    # -- hooks ----------------------------------------------------------------------------
    def subscribe(self, fn: Subscriber, *kinds: JobEventKind | str) -> Callable[[], None]:
        """Call `fn(quebec.JobEvent)` on job events of `kinds` in this process (every kind when
        none is given): enqueued, started, finished, failed, retried, discarded. Returns the
        function that unsubscribes. A subscriber that raises is logged, never breaks the job."""
        return self.db.events.subscribe(fn, kinds)

    def on_start(self, fn: F) -> F:
        return self.hooks.add("start", fn)

    def on_stop(self, fn: F) -> F:
        return self.hooks.add("stop", fn)

    def on_worker_start(self, fn: F) -> F:
        return self.hooks.add("worker_start", fn)

    def on_worker_stop(self, fn: F) -> F:
        return self.hooks.add("worker_stop", fn)

    def on_shutdown(self, fn: F) -> F:
        return self.hooks.add("shutdown", fn)

    def invoke_start_handlers(self) -> None:
        self.hooks.run("start")

    def invoke_stop_handlers(self) -> None:
        self.hooks.run("stop")


def _job_id(job: ActiveJob | int) -> int:
    if isinstance(job, ActiveJob):
        if job.id is None:
            raise ValueError(
                f"{job.class_name} was not enqueued (its id is None: built, not enqueued, or AbortEnqueue), "
                f"so there is nothing to wait for"
            )
        return job.id
    if isinstance(job, bool) or not isinstance(job, int):
        raise ValueError(f"wait for a job returned by perform_later, or a job id (int), not {job!r}")
    return job
