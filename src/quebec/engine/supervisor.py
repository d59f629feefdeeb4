"""ThreadSupervisor: runs the components of one OS process as threads (`qc.run()`).

Shutdown on TERM/INT: workers stop claiming and hand back jobs they have not
started; running jobs get `shutdown_timeout`; jobs still running after that are
handed back to ready (they run again); stop hooks run; rows are deregistered.
USR1/TSTP (or quiet()): stop claiming. USR2: start or stop the job metrics recording.
Signal handlers only record an intent; this main loop acts on it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace

from quebec.config import Settings
from quebec.config.rules import COMPONENTS
from quebec.engine.completer import Completer
from quebec.engine.concurrency_maintenance import ConcurrencyMaintenance
from quebec.engine.dispatcher import Dispatcher
from quebec.engine.executor import Executor
from quebec.engine.maintenance import Maintenance
from quebec.engine.memory import RECYCLE_EXIT, MemoryWatch, resident_mb, unique_mb
from quebec.engine.metrics import JobMetrics, MeteredExecutor
from quebec.engine.notifier import Notifier
from quebec.engine.process_rows import process_info
from quebec.engine.rate_limiter import RateLimiter
from quebec.engine.scheduler import Scheduler, build_scheduler
from quebec.engine.signals import Intent, Intents
from quebec.engine.systemd import SystemdNotifier, set_title
from quebec.engine.unsupported import unsupported_options
from quebec.engine.worker import Worker
from quebec.hooks import Hooks
from quebec.registry import Registry
from quebec.sealing import Sealing
from quebec.store import Database, processes
from quebec.types import QueueSelector

log = logging.getLogger("quebec.supervisor")


@dataclass
class _Registered:
    kind: str
    name: str
    id: int
    metadata: dict[str, object]


class ThreadSupervisor:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        registry: Registry,
        hooks: Hooks,
        *,
        spawn: Iterable[str] | None,
        threads: int | None = None,
        control_plane: str | None = None,
        metrics: JobMetrics | None = None,
        supervisor_id: int | None = None,
    ) -> None:
        self.db = db
        self.supervisor_id = supervisor_id  # the fork supervisor's process row, in a forked child
        self.settings = settings
        self.registry = registry
        self.hooks = hooks
        # checked by config.run_options (qc.run/start) or the settings loader (QUEBEC_SPAWN)
        self._spawn_given = None if spawn is None else tuple(spawn)
        self.spawn = set(self._spawn_given) if self._spawn_given is not None else set(COMPONENTS)
        self.threads = threads
        self.control_plane = control_plane
        self.metrics = metrics
        self._quiet = False
        self._thread: threading.Thread | None = None  # start_background()'s
        self.intents = Intents()
        self.hostname = socket.gethostname()
        self.exit_code = 0
        self._rows: dict[str, _Registered] = {}
        self._lock = threading.Lock()
        self.workers: list[Worker] = []
        self.dispatcher: Dispatcher | None = None
        self.scheduler: Scheduler | None = None
        self.maintenance: Maintenance | None = None
        self.concurrency: ConcurrencyMaintenance | None = None
        self.completer: Completer | None = None
        self.notifier: Notifier | None = None
        self._stopped = threading.Event()
        self._signals_installed = False
        self.memory: MemoryWatch | None = None
        self.systemd = SystemdNotifier(os.environ)
        self._titled = True  # until setproctitle turns out to be missing
        self._recycle_by: float | None = None  # set when memory recycling began: drain until then

    # -- start ----------------------------------------------------------------------------
    def start(self) -> None:
        s = self.settings
        clock = self.db.clock
        for sentence in unsupported_options(
            s, spawn=self._spawn_given, control_plane=self.control_plane, environ=os.environ
        ):
            log.warning(sentence)
        if "worker" in self.spawn:
            worker_row = self._register(
                "Worker", "worker", {"queues": list(s.worker_queues), "threads": self._threads()}
            )
            self.completer = Completer(
                self.db, lambda: self._rows["worker"].id, preserve_finished=s.preserve_finished_jobs
            )
            self.completer.start()
            sealing = Sealing.from_settings(s)  # one Cipher for the executor and the rate limiter
            executor = Executor(self.registry, clock, sealing, self.db.events)
            self.workers.append(
                Worker(
                    self.db,
                    queues=self._queues(),
                    threads=self._threads(),
                    polling_interval=s.worker_polling_interval,
                    executor=executor if self.metrics is None else self._metered(executor),
                    completer=self.completer,
                    process_id=lambda: self._rows["worker"].id,
                    hold_back=RateLimiter(self.db, self.registry, sealing.cipher).hold_back,
                    exclusive=self._exclusive,
                    limited_queues=tuple(s.experimental_queue_concurrency),
                    notified=s.use_listen_notify and self.db.dialect.supports_listen,
                )
            )
            log.info(
                "worker.started id=%s queues=%s threads=%d",
                worker_row.id,
                ",".join(self._queues().patterns),
                self._threads(),
            )
        if "dispatcher" in self.spawn:
            self._register(
                "Dispatcher",
                "dispatcher",
                {"polling_interval": s.dispatcher_polling_interval, "batch_size": s.dispatcher_batch_size},
            )
            self.dispatcher = Dispatcher(
                self.db,
                polling_interval=s.dispatcher_polling_interval,
                batch_size=s.dispatcher_batch_size,
                on_dispatched=self.wake_workers,
            )
            if not s.dispatchers or s.dispatchers[0].concurrency_maintenance:
                self.concurrency = ConcurrencyMaintenance(
                    self.db, interval=s.dispatcher_concurrency_maintenance_interval, on_unblocked=self.wake_workers
                )
        if "scheduler" in self.spawn:
            self._register("Scheduler", "scheduler", {})
            self.scheduler = build_scheduler(
                self.db, s, self.registry, self.registry.next_run_functions, on_enqueued=self.wake_workers
            )
        self.maintenance = Maintenance(
            self.db,
            hostname=self.hostname,
            heartbeat_interval=s.process_heartbeat_interval,
            alive_threshold=s.process_alive_threshold,
            process_ids=self.process_ids,
            on_pruned=self._reregister,
            at_most_once=self._at_most_once,
        )
        if self.workers:
            self.notifier = Notifier(self.db, s.name, self.wake_workers, s.use_listen_notify)
            self.notifier.start()
        if self.workers and s.worker_max_rss_mb > 0:
            self.memory = MemoryWatch(
                limit_mb=s.worker_max_rss_mb,
                every=s.worker_memory_check_interval,
                confirmations=s.worker_memory_recycle_confirmations,
                on_over=lambda mb: self.intents.put(Intent.RECYCLE),
                # a forked child counts what is its own, not the pages shared with its supervisor
                sample=resident_mb if self.supervisor_id is None else unique_mb,
            )
        if self._quiet:  # quiet() before start: the workers never claim
            self.quiet()
        self.hooks.run("start")
        for worker in self.workers:
            self.hooks.run("worker_start")
            worker.start()
        if self.dispatcher:
            self.dispatcher.start()
        if self.concurrency:
            self.concurrency.start()
        if self.scheduler:
            self.scheduler.start()
        self.maintenance.start()
        if self.memory is not None:
            self.memory.start()
        self.systemd.ready(self.status_line())
        self._retitle()

    @property
    def worker_threads(self) -> int:
        return self._threads()

    def _threads(self) -> int:
        return self.threads or self.settings.worker_threads

    def _metered(self, executor: Executor) -> Executor:
        assert self.metrics is not None
        return MeteredExecutor(executor, self.metrics, self.in_flight_count)

    def _queues(self) -> QueueSelector:
        forced = self.settings.force_override_queue
        return QueueSelector((forced,)) if forced else QueueSelector(self.settings.worker_queues)

    def _exclusive(self, class_name: str) -> bool:
        return getattr(self.registry.get(class_name), "exclusive", False) is True

    def _at_most_once(self) -> list[str]:
        return [c.__qualname__ for c in self.registry.classes() if c.at_most_once]

    def _register(self, kind: str, key: str, extra: dict[str, object]) -> _Registered:
        info, metadata = process_info(kind, key, self.hostname, extra)
        info = replace(info, supervisor_id=self.supervisor_id)
        pid = self.db.transact(processes.register, info=info)
        row = _Registered(kind, info.name, pid, metadata)
        with self._lock:
            self._rows[key] = row
        return row

    def _reregister(self, missing: list[int]) -> None:
        for key, row in list(self._rows.items()):
            if row.id in missing:
                self._register(
                    row.kind, key, {k: v for k, v in row.metadata.items() if k not in ("started_at", "hostname")}
                )

    def process_ids(self) -> list[int]:
        with self._lock:
            return [r.id for r in self._rows.values()]

    def wake_workers(self, queues: Iterable[str] | None = None) -> None:
        for worker in self.workers:
            if queues is None or any(worker.queues.matches(q) for q in queues):
                worker.wake_up()

    # -- runtime control (qc.quiet(), qc.in_flight_count(), signals) -----------------------
    @property
    def is_quiet(self) -> bool:
        return self._quiet

    @property
    def stopped(self) -> bool:
        """Shutdown has begun (stop(), a signal, or a failed start)."""
        return self._stopped.is_set()

    def quiet(self) -> None:
        """Stop claiming; running jobs finish. What USR1 does; idempotent, from any thread."""
        if not self._quiet:
            log.info("supervisor.quiet: no longer claiming")
        self._quiet = True
        for worker in self.workers:
            worker.go_quiet()

    def in_flight_count(self) -> int:
        """Jobs running on this process's worker threads now (busy threads)."""
        return sum(len(worker.lane.running()) for worker in self.workers)

    def install_signals(self) -> bool:
        """Route signals to this runtime's intents; only on the main thread (False elsewhere)."""
        self._signals_installed = self.intents.install()
        return self._signals_installed

    def release_signals(self) -> None:
        """Give signals back (now on the main thread, else at the next signal that arrives)."""
        self.intents.close()

    def _toggle_metrics(self) -> None:
        if self.metrics is None:
            return
        try:
            self.metrics.toggle(reason="stopped by signal")
        except Exception as exc:  # noqa: BLE001 - a bad metrics folder must not stop the runtime
            log.error("job_metrics.toggle_failed: %s", exc)

    # -- run loop -------------------------------------------------------------------------
    def run(self) -> int:
        """Start, wait for a signal or stop(), shut down; returns the exit code."""
        self.install_signals()
        try:
            self.start()
            self._wait()
        finally:
            self.release_signals()
        return self.exit_code

    def start_background(self) -> None:
        """start(), then the main loop, in a thread of their own (qc.start()); returns once
        started, raising what start() raised. Called on the main thread, signals come here
        until it stops."""
        self.install_signals()
        ready = threading.Event()
        failure: list[BaseException] = []

        def main() -> None:
            try:
                self.start()
            except BaseException as exc:
                failure.append(exc)
                self.shutdown()
                return
            finally:
                ready.set()
            self._wait()

        self._thread = threading.Thread(target=main, name="quebec-supervisor", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self.release_signals()
            raise failure[0]

    def join(self, timeout: float | None = None) -> bool:
        """Wait for start_background()'s runtime to end, then give the signals back; True once it
        has ended. (run() gives its signals back itself, on its own thread.)"""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        if self._thread.is_alive():
            return False
        self.release_signals()
        return True

    def status_line(self) -> str:
        """What this process does, in a few words: for systemd's STATUS= and the process title."""
        if not self.workers:
            return f"quebec-{'+'.join(sorted(self.spawn))}"
        queues = ",".join(self._queues().patterns)
        state = "quiet" if self._quiet else f"{self.in_flight_count()}/{self._threads()} busy"
        return f"quebec-worker[{queues}] {state}"

    def _retitle(self) -> None:
        if self._titled:
            self._titled = set_title(self.status_line())

    def _wait(self) -> None:
        while True:
            intent = self.intents.get(timeout=0.25)
            self.systemd.tick(self.status_line())
            self._retitle()
            if intent is Intent.STOP:
                self.shutdown()
                return
            if intent is Intent.QUIT:
                log.warning("supervisor.quit: exiting at once; claims are recovered by pruning")
                os._exit(0)
            if intent is Intent.QUIET:
                self.quiet()
            if intent is Intent.METRICS:
                self._toggle_metrics()
            if intent is Intent.RECYCLE:
                self._begin_recycle()
            if self._recycle_by is not None and (
                all(w.lane.wait_idle(0) for w in self.workers) or time.monotonic() >= self._recycle_by
            ):
                log.warning("supervisor.recycled: exiting %d for a fresh process to take over", RECYCLE_EXIT)
                self.exit_code = RECYCLE_EXIT
                self.shutdown()
                return
            if self._quiet and self.settings.quiet_then_exit and all(w.lane.wait_idle(0) for w in self.workers):
                log.info("supervisor.drained: exiting (quiet_then_exit)")
                self.shutdown()
                return

    def _begin_recycle(self) -> None:
        if self._recycle_by is not None:
            return
        grace = self.settings.worker_memory_graceful_timeout
        log.warning(
            "worker.memory_recycle limit_mb=%d: over it %d times in a row; going quiet, letting running jobs "
            "finish (up to %.0fs), then exiting %d",
            self.settings.worker_max_rss_mb,
            self.settings.worker_memory_recycle_confirmations,
            grace,
            RECYCLE_EXIT,
        )
        self._recycle_by = time.monotonic() + grace
        self.quiet()

    def stop(self) -> None:
        """Ask for a graceful shutdown from any thread."""
        self.intents.put(Intent.STOP)

    def shutdown(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.systemd.stopping()
        timeout = self.settings.shutdown_timeout
        self.hooks.run("shutdown")
        for worker in self.workers:
            worker.go_quiet()
            worker.stop()
            # A claim in flight could hand the lane jobs after we emptied it: wait for it.
            worker.join(5.0)
            released = worker.release_unstarted()
            if released:
                log.info("job.released count=%d (claimed, not started)", len(released))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not all(w.lane.is_idle() for w in self.workers):
            # A second TERM/INT skips the rest of the grace period; QUIT leaves at once.
            intent = self.intents.get(timeout=0.05)
            if intent is Intent.STOP:
                log.warning("supervisor.stop_again: not waiting for running jobs any longer")
                break
            if intent is Intent.QUIT:
                os._exit(0)
        for worker in self.workers:
            if not worker.lane.is_idle():
                again = worker.release_running()
                log.warning(
                    "job.released_running count=%d: still running after shutdown_timeout=%.1fs; they will run again",
                    len(again),
                    timeout,
                )
            worker.lane.close()
            self.hooks.run("worker_stop")
        if self.completer is not None:
            self.completer.close(timeout=max(5.0, timeout))
        for component in (self.dispatcher, self.concurrency, self.scheduler, self.maintenance, self.memory):
            if component is not None:
                component.stop()
                component.join(2.0)
        if self.notifier is not None:
            self.notifier.stop()
        for row in list(self._rows.values()):
            try:
                self.db.transact(processes.deregister, process_id=row.id)
            except Exception:
                log.exception("process.deregister_failed id=%s", row.id)
        if self.metrics is not None:
            self.metrics.stop("shutdown")  # the file is complete when the runtime ends
        self.hooks.run("stop")
        self.intents.close()
