"""Quebec: settings, Database, registry and hooks, wired together. It delegates; it does not decide.

Its methods live in mixins by purpose (app_enqueue, app_draining, app_waiting, app_hooks,
app_batches, app_recurring, app_control_plane, operations, metrics_control); this module keeps
construction, registration and the runtime's life cycle.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from quebec.app_batches import BatchMethods
from quebec.app_control_plane import ControlPlaneMethods
from quebec.app_draining import DrainMethods
from quebec.app_enqueue import EnqueueMethods
from quebec.app_hooks import HookMethods
from quebec.app_recurring import RecurringMethods
from quebec.app_waiting import WaitMethods
from quebec.config import Settings, load_settings, run_options
from quebec.engine.forking import ForkSupervisor
from quebec.engine.runtime import ProcessRuntime
from quebec.engine.unsupported import fork_mode, refuse_unappliable
from quebec.errors import ConfigError, DatabaseUnavailable
from quebec.flow_rules import RegistryFlowRules
from quebec.function_jobs import FunctionJob, job_class_for
from quebec.hooks import Hooks
from quebec.job import BaseClass
from quebec.metrics_control import JobMetricsControl
from quebec.operations import Operations
from quebec.registry import Registry
from quebec.sealing import Sealing
from quebec.store import Database, health

log = logging.getLogger("quebec")
J = TypeVar("J", bound=type[BaseClass])


# The mixins moved out of this class come first, so each of their methods wins over any
# namesake further down the bases, as it did when it was defined here.
class Quebec(
    EnqueueMethods,
    DrainMethods,
    WaitMethods,
    HookMethods,
    Operations,
    JobMetricsControl,
    RecurringMethods,
    ControlPlaneMethods,
    BatchMethods,
):
    """One per process. `Quebec(url, **options)`; options as in spec/configuration.md."""

    # Runtime state that exists before any start(); a class default, set per instance when used.
    _quiet_requested = False

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
