"""ProcessRuntime: the components of one OS process, run as threads.

`qc.run()`, `qc.start()` and every child of the fork supervisor run one. Building it does
nothing; start() assembles the components (engine/assembly.py: one worker per queue.yml
`workers:` entry, one dispatcher per `dispatchers:` entry, each with a process row of its
own), registers their rows and starts their threads. Signal handlers only record an
intent; the main loop, one `step()` at a time, acts on it:
TERM/INT stop gracefully (engine/shutdown.py); QUIT exits at once (pruning recovers the
claims); USR1/TSTP or quiet() stop claiming; USR2 toggles job metrics; a memory recycle
drains, then exits 75. Time comes from `monotonic`, so a test can step the loop.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable

from quebec.config import Settings
from quebec.config.rules import COMPONENTS
from quebec.engine.assembly import Components, Wiring, assemble
from quebec.engine.memory import RECYCLE_EXIT, recycle_limit_mb
from quebec.engine.metrics import JobMetrics
from quebec.engine.process_table import ProcessTable
from quebec.engine.shutdown import shut_down
from quebec.engine.signals import Intent, Intents
from quebec.engine.systemd import SystemdNotifier, set_title
from quebec.engine.unsupported import unsupported_options
from quebec.engine.worker import Worker
from quebec.hooks import Hooks
from quebec.registry import Registry
from quebec.store import Database

log = logging.getLogger("quebec.supervisor")


class ProcessRuntime:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        registry: Registry,
        hooks: Hooks,
        *,
        spawn: Iterable[str] | None,
        threads: int | None = None,
        metrics: JobMetrics | None = None,
        supervisor_id: int | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.settings = settings
        self.registry = registry
        self.hooks = hooks
        self.supervisor_id = supervisor_id  # the fork supervisor's process row, in a forked child
        # checked by config.run_options (qc.run/start) or the settings loader (QUEBEC_SPAWN)
        self._spawn_given = None if spawn is None else tuple(spawn)
        self.spawn = frozenset(self._spawn_given if self._spawn_given is not None else COMPONENTS)
        self.threads = threads
        self.metrics = metrics
        self._monotonic = monotonic
        self.intents = Intents()
        self.rows = ProcessTable(db, socket.gethostname(), supervisor_id)
        self.parts = Components()
        self.exit_code = 0
        self.systemd = SystemdNotifier(os.environ)
        self._quiet = False
        self._thread: threading.Thread | None = None  # start_background()'s
        self._stopped = threading.Event()
        self._titled = True  # until setproctitle turns out to be missing
        self._recycle_by: float | None = None  # set when memory recycling began: drain until then

    # -- start ----------------------------------------------------------------------------
    def start(self) -> None:
        for sentence in unsupported_options(self.settings, spawn=self._spawn_given, environ=os.environ):
            log.warning(sentence)
        wiring = Wiring(
            spawn=self.spawn,
            threads=self.threads,
            metrics=self.metrics,
            forked=self.supervisor_id is not None,
            in_flight=self.in_flight_count,
            on_memory_over=lambda mb: self.intents.put(Intent.RECYCLE),
        )
        self.parts = assemble(self.db, self.settings, self.registry, self.rows, wiring)
        for unit in self.parts.units:
            unit.completer.start()
            log.info(
                "worker.started id=%s queues=%s threads=%d",
                self.rows.id_of(unit.key),
                ",".join(unit.worker.queues.patterns),
                unit.threads,
            )
        if self.parts.notifier is not None:
            self.parts.notifier.start()
        if self._quiet:  # quiet() before start: the workers never claim
            self.quiet()
        self.hooks.run("start")
        for worker in self.workers:
            self.hooks.run("worker_start")
            worker.start()
        for loop in self.parts.loops():
            loop.start()
        self.systemd.ready(self.status_line())
        self._retitle()

    @property
    def workers(self) -> list[Worker]:
        return self.parts.workers

    @property
    def worker_threads(self) -> int:
        """Threads of this process's workers (before start: what the first worker will have)."""
        if self.parts.units:
            return sum(unit.threads for unit in self.parts.units)
        return self.threads or self.settings.worker_threads

    def process_ids(self) -> list[int]:
        return self.rows.ids()

    def wake_workers(self, queues: Iterable[str] | None = None) -> None:
        self.parts.wake(queues)

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
        return self.intents.install()

    def release_signals(self) -> None:
        """Give signals back (now on the main thread, else at the next signal that arrives)."""
        self.intents.close()

    def stop(self) -> None:
        """Ask for a graceful shutdown from any thread."""
        self.intents.put(Intent.STOP)

    # -- run loop -------------------------------------------------------------------------
    def run(self) -> int:
        """Start, wait for a signal or stop(), shut down; returns the exit code."""
        self.install_signals()
        try:
            self.start()
            self._loop()
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
            self._loop()

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
        if not self.parts.units:
            return f"quebec-{'+'.join(sorted(self.spawn))}"
        queues = ",".join(p for w in self.workers for p in w.queues.patterns)
        state = "quiet" if self._quiet else f"{self.in_flight_count()}/{self.worker_threads} busy"
        return f"quebec-worker[{queues}] {state}"

    def _retitle(self, line: str | None = None) -> None:
        if self._titled:
            self._titled = set_title(self.status_line() if line is None else line)

    def _loop(self) -> None:
        while not self.step(self.intents.get(timeout=0.25)):
            pass

    def step(self, intent: Intent | None) -> bool:
        """Act on one intent (None: only look at the clock); True once the runtime has shut down."""
        line = self.status_line()  # one reading for systemd's STATUS= and the process title
        self.systemd.tick(line)
        self._retitle(line)
        if intent is Intent.STOP:
            self.shutdown()
            return True
        if intent is Intent.QUIT:
            log.warning("supervisor.quit: exiting at once; claims are recovered by pruning")
            os._exit(0)
        if intent is Intent.QUIET:
            self.quiet()
        if intent is Intent.METRICS:
            self._toggle_metrics()
        if intent is Intent.RECYCLE:
            self._begin_recycle()
        drained = all(w.lane.wait_idle(0) for w in self.workers)
        if self._recycle_by is not None and (drained or self._monotonic() >= self._recycle_by):
            log.warning("supervisor.recycled: exiting %d for a fresh process to take over", RECYCLE_EXIT)
            self.exit_code = RECYCLE_EXIT
            self.shutdown()
            return True
        if self._quiet and self.settings.quiet_then_exit and drained:
            log.info("supervisor.drained: exiting (quiet_then_exit)")
            self.shutdown()
            return True
        return False

    def _toggle_metrics(self) -> None:
        if self.metrics is None:
            return
        try:
            self.metrics.toggle(reason="stopped by signal")
        except Exception as exc:  # noqa: BLE001 - a bad metrics folder must not stop the runtime
            log.error("job_metrics.toggle_failed: %s", exc)

    def _begin_recycle(self) -> None:
        if self._recycle_by is not None:
            return
        grace = self.settings.worker_memory_graceful_timeout
        log.warning(
            "worker.memory_recycle limit_mb=%.0f: over it %d times in a row; going quiet, letting running jobs "
            "finish (up to %.0fs), then exiting %d",
            recycle_limit_mb(self.settings),
            self.settings.worker_memory_recycle_confirmations,
            grace,
            RECYCLE_EXIT,
        )
        self._recycle_by = self._monotonic() + grace
        self.quiet()

    def shutdown(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.systemd.stopping()
        self.hooks.run("shutdown")
        shut_down(
            self.parts,
            timeout=self.settings.shutdown_timeout,
            intents=self.intents,
            hooks=self.hooks,
            monotonic=self._monotonic,
        )
        self.rows.deregister_all()
        if self.metrics is not None:
            self.metrics.stop("shutdown")  # the file is complete when the runtime ends
        self.hooks.run("stop")
        self.intents.close()
