"""ThreadSupervisor: runs the components of one OS process as threads (`qc.run()`).

Shutdown on TERM/INT: workers stop claiming and hand back jobs they have not
started; running jobs get `shutdown_timeout`; jobs still running after that are
handed back to ready (they run again); stop hooks run; rows are deregistered.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

import psutil

from quebec.config import Settings
from quebec.engine.completer import Completer
from quebec.engine.dispatcher import Dispatcher
from quebec.engine.executor import Executor
from quebec.engine.maintenance import Maintenance
from quebec.engine.notifier import Notifier
from quebec.engine.signals import Intent, Intents
from quebec.engine.worker import Worker
from quebec.hooks import Hooks
from quebec.registry import Registry
from quebec.store import Database, processes
from quebec.types import ProcessInfo, QueueSelector

log = logging.getLogger("quebec.supervisor")
COMPONENTS = ("worker", "dispatcher", "scheduler")


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
    ) -> None:
        self.db = db
        self.settings = settings
        self.registry = registry
        self.hooks = hooks
        self.spawn = set(spawn) if spawn is not None else set(COMPONENTS)
        unknown = self.spawn - set(COMPONENTS)
        if unknown:
            raise ValueError(f"spawn={sorted(unknown)} names unknown components; choose from {list(COMPONENTS)}")
        self.threads = threads
        self.intents = Intents()
        self.hostname = socket.gethostname()
        self.exit_code = 0
        self._rows: dict[str, _Registered] = {}
        self._lock = threading.Lock()
        self.workers: list[Worker] = []
        self.dispatcher: Dispatcher | None = None
        self.maintenance: Maintenance | None = None
        self.completer: Completer | None = None
        self.notifier: Notifier | None = None
        self._stopped = threading.Event()
        self._signals_installed = False

    # -- start ----------------------------------------------------------------------------
    def start(self) -> None:
        s = self.settings
        clock = self.db.clock
        if "worker" in self.spawn:
            worker_row = self._register(
                "Worker", "worker", {"queues": list(s.worker_queues), "threads": self._threads()}
            )
            self.completer = Completer(
                self.db, lambda: self._rows["worker"].id, preserve_finished=s.preserve_finished_jobs
            )
            self.completer.start()
            executor = Executor(self.registry, clock)
            self.workers.append(
                Worker(
                    self.db,
                    queues=self._queues(),
                    threads=self._threads(),
                    polling_interval=s.worker_polling_interval,
                    executor=executor,
                    completer=self.completer,
                    process_id=lambda: self._rows["worker"].id,
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
        self.hooks.run("start")
        for worker in self.workers:
            self.hooks.run("worker_start")
            worker.start()
        if self.dispatcher:
            self.dispatcher.start()
        self.maintenance.start()

    def _threads(self) -> int:
        return self.threads or self.settings.worker_threads

    def _queues(self) -> QueueSelector:
        forced = self.settings.force_override_queue
        return QueueSelector((forced,)) if forced else QueueSelector(self.settings.worker_queues)

    def _at_most_once(self) -> list[str]:
        return [c.__qualname__ for c in self.registry.classes() if c.at_most_once]

    def _register(self, kind: str, key: str, extra: dict[str, object]) -> _Registered:
        started_at = psutil.Process(os.getpid()).create_time()
        metadata = {"started_at": started_at, "hostname": self.hostname, **extra}
        name = f"{key}-{secrets.token_hex(6)}"
        pid = self.db.transact(
            processes.register,
            info=ProcessInfo(
                kind=kind, name=name, pid=os.getpid(), hostname=self.hostname, metadata=json.dumps(metadata)
            ),
        )
        row = _Registered(kind, name, pid, metadata)
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

    # -- run loop -------------------------------------------------------------------------
    def run(self) -> int:
        """Start, wait for a signal or stop(), shut down; returns the exit code."""
        self._signals_installed = self.intents.install()
        try:
            self.start()
            self._wait()
        finally:
            self.intents.restore()
        return self.exit_code

    def wait_for_stop(self) -> None:
        """The main loop of a runtime started off the main thread (qc.start())."""
        self._wait()

    def _wait(self) -> None:
        quiet_exit = False
        while True:
            intent = self.intents.get(timeout=0.25)
            if intent is Intent.STOP:
                self.shutdown()
                return
            if intent is Intent.QUIT:
                log.warning("supervisor.quit: exiting at once; claims are recovered by pruning")
                os._exit(0)
            if intent is Intent.QUIET:
                log.info("supervisor.quiet: no longer claiming")
                for worker in self.workers:
                    worker.go_quiet()
                quiet_exit = self.settings.quiet_then_exit
            if quiet_exit and all(w.lane.wait_idle(0) for w in self.workers):
                log.info("supervisor.drained: exiting (quiet_then_exit)")
                self.shutdown()
                return

    def stop(self) -> None:
        """Ask for a graceful shutdown from any thread."""
        self.intents.put(Intent.STOP)

    def shutdown(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
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
        for component in (self.dispatcher, self.maintenance):
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
        self.hooks.run("stop")
