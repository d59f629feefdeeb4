"""Assembly: build the components one OS process runs from its settings, registered, not started.

`assemble` is the wiring, and only the wiring: which workers (one per queue.yml `workers:`
entry), dispatchers (one per `dispatchers:` entry), scheduler and maintenance loops this
process runs, each with its process row, and how they wake each other. Nothing here
starts a thread; the runtime starts what it gets back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from quebec.config import Settings, WorkerConfig
from quebec.engine.batch_maintenance import BatchMaintenance
from quebec.engine.batch_members import BatchMemberExecutor
from quebec.engine.completer import Completer
from quebec.engine.concurrency_maintenance import ConcurrencyMaintenance
from quebec.engine.dispatcher import Dispatcher
from quebec.engine.executor import Executor
from quebec.engine.maintenance import Maintenance
from quebec.engine.memory import MemoryWatch, recycle_limit_mb, resident_mb, unique_mb
from quebec.engine.metrics import JobMetrics, MeteredExecutor
from quebec.engine.notifier import Notifier
from quebec.engine.process_table import ProcessTable
from quebec.engine.rate_limiter import RateLimiter
from quebec.engine.runnable import Runnable
from quebec.engine.running import MarkingExecutor, installed
from quebec.engine.scheduler import Scheduler, build_scheduler
from quebec.engine.worker import Worker
from quebec.registry import Registry
from quebec.sealing import Sealing
from quebec.store import Database
from quebec.types import QueueSelector


@dataclass
class WorkerUnit:
    """A worker, the completer that writes its outcomes, and the key of its process row."""

    key: str
    worker: Worker
    completer: Completer
    threads: int


class WakeRouter:
    """Wakes the workers whose queues match: what a NOTIFY, an enqueue in this process, a
    dispatch or an unblock calls. Filled once the workers exist."""

    def __init__(self) -> None:
        self.workers: list[Worker] = []

    def __call__(self, queues: Iterable[str] | None = None) -> None:
        names = None if queues is None else list(queues)
        for worker in self.workers:
            if names is None or any(worker.queues.matches(q) for q in names):
                worker.wake_up()


@dataclass
class Components:
    units: list[WorkerUnit] = field(default_factory=list)
    dispatchers: list[Dispatcher] = field(default_factory=list)
    concurrency: ConcurrencyMaintenance | None = None
    batches: BatchMaintenance | None = None
    scheduler: Scheduler | None = None
    maintenance: Maintenance | None = None
    notifier: Notifier | None = None
    memory: MemoryWatch | None = None
    wake: WakeRouter = field(default_factory=WakeRouter)
    # Set when shutdown begins: Continuable jobs stop at their next checkpoint (executor).
    stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def workers(self) -> list[Worker]:
        return [unit.worker for unit in self.units]

    def loops(self) -> list[Runnable]:
        """The loops besides the workers, in the order they start."""
        found: list[Runnable | None] = [
            *self.dispatchers,
            self.concurrency,
            self.batches,
            self.scheduler,
            self.maintenance,
            self.memory,
        ]
        return [loop for loop in found if loop is not None]


@dataclass(frozen=True)
class Wiring:
    """What assemble needs from the runtime that owns the components."""

    spawn: frozenset[str]
    threads: int | None  # qc.run(threads=N): every worker's thread count
    metrics: JobMetrics | None
    forked: bool  # a fork supervisor's child: memory counts what is its own (USS)
    in_flight: Callable[[], int]
    on_memory_over: Callable[[float], None]


def worker_queues(settings: Settings, entry: WorkerConfig) -> QueueSelector:
    forced = settings.force_override_queue
    return QueueSelector((forced,)) if forced else QueueSelector(entry.queues)


def assemble(db: Database, settings: Settings, registry: Registry, rows: ProcessTable, wiring: Wiring) -> Components:
    parts = Components()
    if "worker" in wiring.spawn:
        sealing = Sealing.from_settings(settings)  # one Cipher for the executors and the rate limiter
        limiter = RateLimiter(db, registry, sealing.cipher)
        for index, entry in enumerate(settings.workers):
            unit = _worker(db, settings, registry, rows, wiring, sealing, limiter, index, entry, parts.stopping)
            parts.units.append(unit)
        parts.wake.workers = parts.workers
    if "dispatcher" in wiring.spawn:
        for index, d in enumerate(settings.dispatchers):
            rows.register(
                "Dispatcher",
                f"dispatcher-{index}",
                "dispatcher",
                {"polling_interval": d.polling_interval, "batch_size": d.batch_size},
            )
            parts.dispatchers.append(
                Dispatcher(db, polling_interval=d.polling_interval, batch_size=d.batch_size, on_dispatched=parts.wake)
            )
        first = settings.dispatchers[0] if settings.dispatchers else None
        if first is None or first.concurrency_maintenance:
            interval = settings.dispatcher_concurrency_maintenance_interval
            parts.concurrency = ConcurrencyMaintenance(db, interval=interval, on_unblocked=parts.wake)
        if first is None or first.batch_maintenance:
            parts.batches = BatchMaintenance(db, interval=settings.dispatcher_concurrency_maintenance_interval)
    if "scheduler" in wiring.spawn:
        rows.register("Scheduler", "scheduler", "scheduler", {})
        parts.scheduler = build_scheduler(db, settings, registry, registry.next_run_functions, on_enqueued=parts.wake)
    parts.maintenance = Maintenance(
        db,
        hostname=rows.hostname,
        heartbeat_interval=settings.process_heartbeat_interval,
        alive_threshold=settings.process_alive_threshold,
        process_ids=rows.ids,
        on_pruned=rows.reregister,
        at_most_once=lambda: [c.__qualname__ for c in registry.classes() if c.at_most_once],
    )
    if parts.units:
        parts.notifier = Notifier(db, settings.name, parts.wake, settings.use_listen_notify)
    recycle_mb = recycle_limit_mb(settings)
    if parts.units and recycle_mb > 0:
        parts.memory = MemoryWatch(
            limit_mb=recycle_mb,
            every=settings.worker_memory_check_interval,
            confirmations=settings.worker_memory_recycle_confirmations,
            on_over=wiring.on_memory_over,
            # a forked child counts what is its own, not the pages shared with its supervisor
            sample=unique_mb if wiring.forked else resident_mb,
        )
    return parts


def _worker(
    db: Database,
    settings: Settings,
    registry: Registry,
    rows: ProcessTable,
    wiring: Wiring,
    sealing: Sealing,
    limiter: RateLimiter,
    index: int,
    entry: WorkerConfig,
    stopping: threading.Event,
) -> WorkerUnit:
    key = f"worker-{index}"
    queues = worker_queues(settings, entry)
    threads = wiring.threads or entry.threads
    rows.register("Worker", key, "worker", {"queues": list(queues.patterns), "threads": threads})

    def row_id() -> int:  # looked up each time: pruning may re-register the row under a new id
        return rows.id_of(key)

    completer = Completer(db, row_id, preserve_finished=settings.preserve_finished_jobs)
    executor: Executor = BatchMemberExecutor(Executor(registry, db.clock, sealing, db.events, stopping))
    if wiring.metrics is not None:
        executor = MeteredExecutor(executor, wiring.metrics, wiring.in_flight)
    board = installed()  # a fork supervisor's worker child: started jobs are marked for OOM attribution
    if board is not None:
        executor = MarkingExecutor(executor, board)
    worker = Worker(
        db,
        queues=queues,
        threads=threads,
        polling_interval=entry.polling_interval,
        executor=executor,
        completer=completer,
        process_id=row_id,
        hold_back=limiter.hold_back,
        exclusive=lambda name: getattr(registry.get(name), "exclusive", False) is True,
        limited_queues=tuple(settings.experimental_queue_concurrency),
        notified=settings.use_listen_notify and db.dialect.supports_listen,
    )
    return WorkerUnit(key, worker, completer, threads)
