"""Quebec: settings, Database, registry and hooks, wired together. It delegates; it does not decide."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from quebec import enqueuing, ops
from quebec.config import Settings, load_settings
from quebec.engine.supervisor import ThreadSupervisor
from quebec.errors import ConfigError
from quebec.hooks import Hooks
from quebec.job import ActiveJob, BaseClass
from quebec.registry import Registry
from quebec.store import Database, jobs

log = logging.getLogger("quebec")
J = TypeVar("J", bound=type[BaseClass])
F = TypeVar("F", bound=Callable[..., Any])


class Quebec:
    """One per process. `Quebec(url, **options)`; options as in spec/configuration.md."""

    def __init__(self, database_url: str | None = None, /, **options: Any) -> None:
        if "database_url" in options and database_url is not None:
            raise ConfigError("pass the database URL once: either positionally or as database_url=")
        if database_url is not None:
            options["database_url"] = database_url
        self.settings: Settings = load_settings(options)
        url = self.settings.database_url
        if not url:
            raise ConfigError("no database URL; pass Quebec('sqlite:///app.db?mode=rwc') or set DATABASE_URL")
        self.db = Database(
            url,
            prefix=self.settings.table_name_prefix,
            use_skip_locked=self.settings.use_skip_locked,
            pool_size=self.settings.db_max_connections,
            connect_timeout=self.settings.db_connect_timeout,
            preserve_finished=self.settings.preserve_finished_jobs,
            ssl={
                k: getattr(self.settings, k)
                for k in ("sslmode", "sslrootcert", "sslcert", "sslkey")
                if getattr(self.settings, k) is not None
            },
        )
        jobs.NOTIFY_CHANNEL[0] = self.settings.name
        self.db.connect()
        self.registry = Registry()
        self.hooks = Hooks()
        self._supervisor: ThreadSupervisor | None = None
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

    def discover_jobs(self, *packages: str, recursive: bool = True, on_error: str = "raise") -> list[type[BaseClass]]:
        found = self.registry.discover(*packages, recursive=recursive, on_error=on_error)
        for cls in found:
            cls._quebec = self
        return found

    # -- enqueue --------------------------------------------------------------------------
    def enqueue_jobs(self, batch: Sequence[ActiveJob]) -> list[ActiveJob]:
        """Insert jobs in one transaction; returns them with ids, in input order."""
        if not batch:
            return []
        rows, plans = enqueuing.plan(batch, self.db.clock.now(), self.settings.force_override_queue)
        enqueued = self.db.transact(jobs.enqueue_many, rows)
        enqueuing.settle(batch, plans, enqueued)
        if self._supervisor is not None:
            self._supervisor.wake_workers(set(rows.queue_names))
        return list(batch)

    def perform_all_later(self, batch: Iterable[ActiveJob]) -> list[ActiveJob]:
        """Bulk enqueue: `qc.perform_all_later([Job.build(1), Job.build(2), ...])`."""
        return self.enqueue_jobs(list(batch))

    # -- schema ---------------------------------------------------------------------------
    def create_tables(self) -> bool:
        return self.db.create_tables()

    # -- running --------------------------------------------------------------------------
    def run(
        self,
        create_tables: bool = False,
        control_plane: str | None = None,
        spawn: Iterable[str] | None = None,
        threads: int | None = None,
    ) -> int:
        """Run worker, dispatcher and maintenance in this process until TERM/INT (blocking)."""
        if control_plane:
            log.warning("control_plane=%r: the dashboard is not built yet; running without it", control_plane)
        if create_tables:
            self.create_tables()
        self._supervisor = ThreadSupervisor(
            self.db, self.settings, self.registry, self.hooks, spawn=spawn, threads=threads
        )
        try:
            return self._supervisor.run()
        finally:
            self._supervisor = None

    def start(
        self, create_tables: bool = False, spawn: Iterable[str] | None = None, threads: int | None = None
    ) -> None:
        """Run in a background thread (no signal handlers); stop with `qc.stop()`."""
        if create_tables:
            self.create_tables()
        ready = threading.Event()
        failure: list[BaseException] = []
        self._supervisor = ThreadSupervisor(
            self.db, self.settings, self.registry, self.hooks, spawn=spawn, threads=threads
        )
        supervisor = self._supervisor

        def main() -> None:
            try:
                supervisor.start()
            except BaseException as exc:
                failure.append(exc)
                supervisor.shutdown()
                return
            finally:
                ready.set()
            supervisor.wait_for_stop()

        self._thread = threading.Thread(target=main, name="quebec-supervisor", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = self._supervisor = None
            raise failure[0]

    def stop(self, timeout: float | None = None) -> None:
        """Graceful shutdown of a runtime started with start() (or run() in another thread)."""
        if self._supervisor is not None:
            self._supervisor.stop()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._supervisor = None

    graceful_shutdown = stop

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def close(self) -> None:
        self.stop()
        self.db.dispose()

    # -- hooks ----------------------------------------------------------------------------
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

    # -- operations (delegated to ops, shared with the CLI) ---------------------------------
    def get_job(self, job_id: int) -> Any:
        return ops.get_job(self.db, job_id)

    def retry_failed(self, job_id: int) -> bool:
        return ops.retry_failed(self.db, [job_id]) > 0

    def discard_failed(self, job_id: int) -> bool:
        return ops.discard_failed(self.db, [job_id]) > 0

    def cancel(self, job_id: int) -> bool:
        """Cancel a job that has not started; False when it is running, finished or failed."""
        return bool(ops.cancel(self.db, [job_id]))

    def retry_all_failed(self, class_name: str | None = None, queue_name: str | None = None) -> int:
        return ops.retry_all_failed(self.db, class_name=class_name, queue_name=queue_name)

    def discard_all_failed(self, class_name: str | None = None, queue_name: str | None = None) -> int:
        return ops.discard_all_failed(self.db, class_name=class_name, queue_name=queue_name)

    def cancel_scheduled(self, job_id: int) -> bool:
        return ops.cancel_scheduled(self.db, [job_id]) > 0

    def pause_queue(self, name: str) -> bool:
        return ops.pause_queue(self.db, name)

    def resume_queue(self, name: str) -> bool:
        return ops.resume_queue(self.db, name)

    def paused_queues(self) -> list[str]:
        return ops.paused_queues(self.db)

    def clear_finished_jobs(self, batch_size: int = 500, finished_before: Any = None) -> int:
        return ops.clear_finished_jobs(self.db, self.settings, batch_size=batch_size, finished_before=finished_before)
