"""Per-job metrics (SIGUSR2, `qc.start_job_metrics()`): one CSV row per finished job.

While no recording runs, a job pays one attribute read (MeteredExecutor.perform). While one
runs, the job's thread takes the time, its own page faults and the process RSS around
`perform`, and hands the row to the recording's bounded buffer (metrics_recording.py).

The aggregates (`qc.job_metrics_summary()`) cover the jobs that finished while a recording
ran. The Rust wheel aggregates every job since start-up, which costs every job, recording
or not.
"""

from __future__ import annotations

import logging
import os
import resource
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from quebec.clock import Clock
from quebec.engine.executor import Executor
from quebec.engine.metrics_recording import RUSAGE, Memory, Recording, Window
from quebec.engine.metrics_summary import Summary
from quebec.engine.outcomes import Failed, Outcome
from quebec.errors import ConfigError
from quebec.types import ClaimedJob

log = logging.getLogger("quebec.job_metrics")
T = TypeVar("T")
# Limits of one recording (as the wheel): it stops by itself after this many rows or seconds.
LIMITS = {"QUEBEC_JOB_METRICS_MAX_ROWS": 100_000, "QUEBEC_JOB_METRICS_MAX_SECONDS": 3600}


def is_failure(outcome: object) -> bool:
    """Whether an executor outcome is a failure (status `failed`). Retried and discarded
    jobs are `executed`, as in the wheel."""
    return isinstance(outcome, Failed)


class JobMetrics:
    """The per-job recorder of one Quebec: start, stop, toggle, and the per-class summary."""

    def __init__(self, clock: Clock, environ: Mapping[str, str]) -> None:
        self._clock = clock
        self._environ = environ
        self._lock = threading.Lock()
        self.recording: Recording | None = None  # None while idle: all a job pays then is reading it
        self._memory: Memory | None = None
        self._summary = Summary()
        self._count = 0  # recordings started, for default file names
        self._warned = False

    @property
    def path(self) -> str | None:
        recording = self.recording
        return None if recording is None else recording.path

    def start(self, path: str | os.PathLike[str] | None = None) -> str:
        """Start recording to `path` (default: a new file in $QUEBEC_JOB_METRICS_DIR or the temp dir)."""
        with self._lock:
            if self.recording is not None:
                raise RuntimeError(
                    f"job metrics recording already active (to {self.recording.path}); "
                    f"stop it first with qc.stop_job_metrics() or SIGUSR2"
                )
            max_rows, max_seconds = (_limit(name, self._environ) for name in LIMITS)
            target = os.fspath(path) if path is not None else self._default_path()
            if self._memory is None:
                self._memory = Memory()
            self.recording = Recording.open(target, max_rows, max_seconds, self._memory, self._forget)
            self._count += 1
        log.info("job_metrics.started path=%s max_rows=%d max_seconds=%d", target, max_rows, max_seconds)
        return target

    def stop(self, reason: str = "stopped") -> dict[str, Any] | None:
        """Stop and wait for the file to be written: `{"path", "rows", "dropped"}`, or None if idle."""
        with self._lock:
            recording, self.recording = self.recording, None
        if recording is None:
            return None
        recording.finish(reason)
        if recording.thread is not None:
            recording.thread.join(10.0)
        return {"path": recording.path, "rows": recording.written, "dropped": recording.dropped}

    def toggle(self, reason: str = "stopped") -> dict[str, Any] | None:
        """Start when idle (returns None); stop when recording (returns what stop() does, logs the summary)."""
        stopped = self.stop(reason)
        if stopped is None:
            self.start()
            return None
        self.log_summary()
        return stopped

    def summary(self, reset: bool = False) -> dict[str, dict[str, Any]]:
        return self._summary.as_dict(reset=reset)

    def log_summary(self) -> None:
        self._summary.log(log)

    def close(self) -> None:
        self.stop("closed")
        if self._memory is not None:
            self._memory.close()
            self._memory = None

    # -- the job side ---------------------------------------------------------------------
    def observe(self, perform: Callable[[ClaimedJob], T], job: ClaimedJob, in_flight: Callable[[], int]) -> T:
        """Run `perform(job)`; while recording, measure it. Measuring never changes the outcome."""
        recording = self.recording
        if recording is None:
            return perform(job)
        try:
            window = recording.begin(self._clock.now(), in_flight())
        except Exception:  # noqa: BLE001 - measuring must never cost a job its run
            self._measure_failed()
            return perform(job)
        try:
            outcome = perform(job)
        except BaseException:
            self._record(recording, job, window, True, in_flight)
            raise
        self._record(recording, job, window, is_failure(outcome), in_flight)
        return outcome

    def _record(
        self, recording: Recording, job: ClaimedJob, window: Window, failed: bool, in_flight: Callable[[], int]
    ) -> None:
        try:
            duration_ms = (time.perf_counter() - window.began) * 1000
            faults = resource.getrusage(RUSAGE)
            active = in_flight()
            end_kb, peak_kb = recording.end(window, active)
            minor = faults.ru_minflt - window.faults.ru_minflt
            scheduled = job.scheduled_at
            jid = job.active_job_id or ""
            row = (
                int(time.time() * 1000),
                os.getpid(),
                threading.get_native_id(),
                jid,
                job.class_name,
                job.queue_name,
                "failed" if failed else "executed",
                round(duration_ms, 3),
                "" if scheduled is None else round((window.started_at - scheduled).total_seconds() * 1000, 3),
                minor,
                faults.ru_majflt - window.faults.ru_majflt,
                window.start_kb,
                peak_kb,
                end_kb,
                peak_kb - window.start_kb,
                "true" if window.single else "false",
                active,
            )
            if not recording.offer(row):
                # The row limit: end here, without waiting for the writer (no disk I/O on a job thread).
                recording.finish("limit reached")
                self._forget(recording)
            self._summary.add(
                job.class_name,
                failed=failed,
                duration_ms=duration_ms,
                minor_faults=minor,
                rss_delta=peak_kb - window.start_kb if window.single else None,
                jid=jid,
            )
        except Exception:  # noqa: BLE001 - measuring must never cost a job its outcome
            self._measure_failed()

    def _forget(self, recording: Recording) -> None:
        """A recording that ended by itself (a limit, a write error) is no longer the current one."""
        with self._lock:
            if self.recording is recording:
                self.recording = None

    def _measure_failed(self) -> None:
        if not self._warned:
            self._warned = True
            log.exception("job_metrics.measure_failed: rows of jobs that hit this are skipped")

    def _default_path(self) -> str:
        folder = self._environ.get("QUEBEC_JOB_METRICS_DIR") or tempfile.gettempdir()
        now = time.time_ns()
        stamp = datetime.fromtimestamp(now // 1_000_000_000, UTC).strftime("%Y%m%dT%H%M%S")
        name = f"quebec-job-metrics-{os.getpid()}-{stamp}.{now % 1_000_000_000:09d}Z-{self._count}.csv"
        return os.path.join(folder, name)


class MeteredExecutor(Executor):
    """The worker's executor with each `perform` observed by JobMetrics; nothing else changes.

    It wraps a built executor rather than building one, so it follows Executor's constructor
    whatever that becomes: it takes the wrapped executor's state (no Executor.__init__), so
    every method but perform is Executor's own. (No __getattr__: it would slow every
    attribute read on the job path.)
    """

    def __init__(self, inner: Executor, metrics: JobMetrics, in_flight: Callable[[], int]) -> None:
        self.__dict__.update(vars(inner))
        self._inner = inner
        self._metrics = metrics
        self._in_flight = in_flight

    def perform(self, job: ClaimedJob) -> Outcome:
        if self._metrics.recording is None:
            return self._inner.perform(job)
        return self._metrics.observe(self._inner.perform, job, self._in_flight)


def _limit(name: str, environ: Mapping[str, str]) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return LIMITS[name]
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(
            f"{name}={raw!r} must be a whole number of at least 1; set it to e.g. {LIMITS[name]} or unset it"
        )
    return int(raw)
