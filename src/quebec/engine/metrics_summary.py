"""Per-class aggregates of recorded jobs, in the wheel's shape (`qc.job_metrics_summary()`)."""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

# RSS percentiles are taken over the latest samples of a class, so a recording of
# millions of jobs keeps a bounded memory; count, sum and max cover every sample.
PERCENTILE_WINDOW = 4096


@dataclass(slots=True)
class ClassStats:
    count: int = 0
    failed: int = 0
    duration_sum: float = 0.0
    duration_max: float = 0.0
    minor_faults: int = 0
    rss_samples: int = 0
    rss_sum: int = 0
    rss_max: int = 0
    rss_max_jid: str | None = None
    rss_recent: deque[int] = field(default_factory=lambda: deque(maxlen=PERCENTILE_WINDOW))

    def as_dict(self) -> dict[str, Any]:
        recent = sorted(self.rss_recent)
        sampled = self.rss_samples > 0
        return {
            "count": self.count,
            "failed": self.failed,
            "duration_ms": {"avg": self.duration_sum / self.count, "max": self.duration_max},
            # Every job has a fault count (getrusage); RSS only jobs that ran alone.
            "minor_faults": {"samples": self.count, "sum": self.minor_faults},
            "process_rss_peak_delta_kb": {
                "samples": self.rss_samples,
                "avg": self.rss_sum / self.rss_samples if sampled else None,
                "p50": _percentile(recent, 50) if sampled else None,
                "p95": _percentile(recent, 95) if sampled else None,
                "max": self.rss_max if sampled else None,
                "max_jid": self.rss_max_jid if sampled else None,
            },
        }


class Summary:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_class: dict[str, ClassStats] = {}

    def add(
        self, class_name: str, *, failed: bool, duration_ms: float, minor_faults: int, rss_delta: int | None, jid: str
    ) -> None:
        """One finished job; `rss_delta` only for a job that ran alone (else other jobs' memory counts)."""
        with self._lock:
            stats = self._by_class.get(class_name)
            if stats is None:
                stats = self._by_class[class_name] = ClassStats()
            stats.count += 1
            stats.failed += failed
            stats.duration_sum += duration_ms
            stats.duration_max = max(stats.duration_max, duration_ms)
            stats.minor_faults += minor_faults
            if rss_delta is not None:
                stats.rss_samples += 1
                stats.rss_sum += rss_delta
                stats.rss_recent.append(rss_delta)
                if stats.rss_max_jid is None or rss_delta > stats.rss_max:
                    stats.rss_max, stats.rss_max_jid = rss_delta, jid

    def as_dict(self, reset: bool = False) -> dict[str, dict[str, Any]]:
        """`{class: {...}}` sorted by class; `reset=True` takes the values and clears them at once."""
        with self._lock:
            taken = self._by_class
            if reset:
                self._by_class = {}
            result = {name: taken[name].as_dict() for name in sorted(taken)}
        return result

    def log(self, logger: logging.Logger) -> None:
        """One `job_metrics.summary` line per class."""
        summary = self.as_dict()
        if not summary:
            logger.info("job_metrics.summary: no jobs finished yet")
        for name, stats in summary.items():
            rss = stats["process_rss_peak_delta_kb"]
            extra = (
                f" rss_peak_delta_avg_kb={rss['avg']:.1f} rss_peak_delta_p50_kb={rss['p50']} "
                f"rss_peak_delta_p95_kb={rss['p95']} rss_peak_delta_max_kb={rss['max']} "
                f"rss_peak_delta_max_jid={rss['max_jid']}"
                if rss["samples"]
                else ""
            )
            logger.info(
                "job_metrics.summary class=%s count=%d failed=%d duration_avg_ms=%.3f duration_max_ms=%.3f "
                "fault_samples=%d minor_faults_sum=%d rss_samples=%d%s",
                name,
                stats["count"],
                stats["failed"],
                stats["duration_ms"]["avg"],
                stats["duration_ms"]["max"],
                stats["minor_faults"]["samples"],
                stats["minor_faults"]["sum"],
                rss["samples"],
                extra,
            )


def _percentile(ordered: list[int], pct: int) -> int:
    """Nearest-rank percentile of a sorted, non-empty list."""
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]
