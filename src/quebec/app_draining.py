"""Quebec's drain methods: claim and perform jobs in the calling thread, for tests and
`python -m quebec --once`. Mixed into `Quebec` to keep app.py small."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from quebec.config import run_options
from quebec.engine.drain import Drain
from quebec.engine.executor import Executor
from quebec.engine.metrics import JobMetrics, MeteredExecutor
from quebec.engine.oneshot import DrainReport, OneShot
from quebec.engine.rate_limiter import RateLimiter
from quebec.execution import Execution

if TYPE_CHECKING:
    from quebec.config import Settings
    from quebec.registry import Registry
    from quebec.sealing import Sealing
    from quebec.store import Database

# Two threads draining one instance for the first time must share one Drain (one set of
# connections, one executor), so its lazy creation is serialised.
_CREATING = threading.Lock()


class DrainMethods:
    db: Database
    settings: Settings
    registry: Registry
    sealing: Sealing
    _metrics: JobMetrics | None  # JobMetricsControl's: made before the first drain, it meters drained jobs too
    _drain: Drain | None = None  # made on first use; Quebec.close() closes it

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
        with _CREATING:
            if self._drain is None:
                executor = Executor(self.registry, self.db.clock, self.sealing, self.db.events)
                metrics = self._metrics
                if metrics is not None:
                    executor = MeteredExecutor(executor, metrics, lambda: 1)
                limiter = RateLimiter(self.db, self.registry, self.sealing.cipher)
                self._drain = Drain(self.db, self.settings, executor, limiter.hold_back)
            return self._drain
