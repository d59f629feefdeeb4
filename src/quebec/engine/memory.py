"""MemoryWatch: recycle a worker whose memory keeps growing (QUEBEC_WORKER_MAX_RSS_MB, or
queue.yml's `workers[].memory_recycle_at` for that entry's processes).

Every `every` seconds it reads the process's resident memory; after `confirmations`
samples in a row over the limit (one spike is not a leak) it calls `on_over` once and
stops watching. The supervisor then goes quiet (claimed jobs not started go back to ready
at once), lets running jobs finish (up to worker_memory_graceful_timeout) and exits with
status 75 (EX_TEMPFAIL), for systemd's `Restart=on-failure` / `SuccessExitStatus`, or a
process manager, to start a fresh process. Memory that Python has freed but not given
back to the OS is only returned by a new process: recycling is the remedy.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import psutil

from quebec.config import Settings
from quebec.config.sizes import UNLIMITED
from quebec.engine.runnable import Runnable

log = logging.getLogger("quebec.worker")
RECYCLE_EXIT = 75  # EX_TEMPFAIL: "try again", as the seed's systemd unit expects
_MB = 1024 * 1024


def recycle_limit_mb(settings: Settings) -> float:
    """The memory, in MB, past which this process recycles; 0: never.

    Each worker entry's memory_recycle_at, else QUEBEC_WORKER_MAX_RSS_MB ("max": that entry
    never). A fork supervisor's worker child has one entry; a process running several
    recycles at the lowest of theirs.
    """
    default = settings.worker_max_rss_mb or None
    limits = []
    for entry in settings.workers:
        at = entry.memory_recycle_at
        if at is None:
            limits += [] if default is None else [float(default)]
        elif at != UNLIMITED:
            limits.append(at / _MB)
    return min(limits, default=0.0)


def resident_mb() -> float:
    """This process's resident set size, in MB."""
    return float(psutil.Process(os.getpid()).memory_info().rss) / (1024 * 1024)


def unique_mb() -> float:
    """Memory only this process holds (USS), in MB: for a forked child, whose RSS counts the
    pages it still shares with its supervisor. Reading it walks /proc's smaps (a few ms)."""
    return float(psutil.Process(os.getpid()).memory_full_info().uss) / (1024 * 1024)


class MemoryWatch(Runnable):
    name = "memory-watch"

    def __init__(
        self,
        *,
        limit_mb: float,
        every: float,
        confirmations: int,
        on_over: Callable[[float], None],
        sample: Callable[[], float] = resident_mb,
    ) -> None:
        super().__init__()
        self.limit_mb = limit_mb
        self.every = every
        self.confirmations = confirmations
        self._on_over = on_over
        self._sample = sample
        self._over = 0

    def run_once(self) -> float:
        mb = self._sample()
        if mb <= self.limit_mb:
            if self._over:
                log.info("worker.memory_ok rss_mb=%.0f limit_mb=%.0f: back under the limit", mb, self.limit_mb)
            self._over = 0
            return self.every
        self._over += 1
        log.warning(
            "worker.memory_over rss_mb=%.0f limit_mb=%.0f sample=%d/%d",
            mb,
            self.limit_mb,
            self._over,
            self.confirmations,
        )
        if self._over < self.confirmations:
            return self.every
        self._on_over(mb)
        self.stop()
        return 0.0
