"""The job metrics controls of Quebec (the wheel's SIGUSR2 feature): start, stop, toggle, summary.

A mixin of `Quebec`: it reads `self.db` and keeps the instance's JobMetrics, made on first use.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from quebec.engine.metrics import JobMetrics
from quebec.store import Database

_CREATING = threading.Lock()  # guards the lazy creation of an instance's JobMetrics


class JobMetricsControl:
    db: Database
    _metrics: JobMetrics | None = None

    def start_job_metrics(self, path: str | os.PathLike[str] | None = None) -> str:
        """Record one CSV row per finished job to `path`, or to a new file in
        $QUEBEC_JOB_METRICS_DIR / the temp dir. Returns the path; raises if already recording."""
        return self._job_metrics().start(path)

    def stop_job_metrics(self) -> dict[str, Any] | None:
        """Stop recording: `{"path", "rows", "dropped"}`, or None when nothing was recording."""
        return self._job_metrics().stop()

    def toggle_job_metrics(self) -> dict[str, Any] | None:
        """Start if idle (returns None), stop if recording (returns the stop result, logs the summary): SIGUSR2."""
        return self._job_metrics().toggle()

    @property
    def job_metrics_path(self) -> str | None:
        """Path of the running job metrics recording, or None."""
        return self._job_metrics().path

    def job_metrics_summary(self, reset: bool = False) -> dict[str, dict[str, Any]]:
        """Per class: count, failed, duration_ms, minor_faults, process_rss_peak_delta_kb, of the
        jobs recorded since start-up (or the last reset=True, which takes and clears them)."""
        return self._job_metrics().summary(reset=reset)

    def log_job_metrics_summary(self) -> None:
        """Log one `job_metrics.summary` line per class."""
        self._job_metrics().log_summary()

    def _job_metrics(self) -> JobMetrics:
        if self._metrics is None:
            with _CREATING:
                if self._metrics is None:
                    self._metrics = JobMetrics(self.db.clock, os.environ)
        return self._metrics
