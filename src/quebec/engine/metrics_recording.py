"""One job metrics recording: a CSV file, its bounded row buffer and the thread that writes it.

Job threads only append to the buffer (a lock and a list append); the writer thread
writes it out every SAMPLE_EVERY and samples the process RSS for the jobs running, so a
job's peak is seen even when it frees its memory before it ends.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import os
import resource
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

log = logging.getLogger("quebec.job_metrics")

COLUMNS = (
    "ts_ms",
    "pid",
    "tid",
    "jid",
    "class",
    "queue",
    "status",
    "duration_ms",
    "delay_ms",
    "minor_faults",
    "major_faults",
    "process_rss_start_kb",
    "process_rss_peak_kb",
    "process_rss_end_kb",
    "process_rss_peak_delta_kb",
    "process_rss_single_job",
    "active_jobs",
)
BUFFER_ROWS = 10_000  # rows waiting for the writer; past this they are dropped and counted
SAMPLE_EVERY = 0.01  # the writer's tick: one RSS sample and one buffer flush
RUSAGE = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)  # page faults of this thread, on Linux


class Memory:
    """The process RSS in KiB: /proc/self/statm read in place (3 µs), psutil elsewhere."""

    def __init__(self) -> None:
        self._page_kb = resource.getpagesize() // 1024
        self._process: Any = None
        try:
            self._fd: int | None = os.open("/proc/self/statm", os.O_RDONLY)
        except OSError:
            self._fd = None

    def rss_kb(self) -> int:
        if self._fd is not None:
            return int(os.pread(self._fd, 64, 0).split()[1]) * self._page_kb
        if self._process is None:
            import psutil

            self._process = psutil.Process()
        return int(self._process.memory_info().rss) // 1024

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@dataclass(eq=False, slots=True)
class Window:
    """One job running while recording: when it began, its RSS then and the highest seen since."""

    started_at: datetime
    began: float  # perf_counter
    faults: Any  # getrusage at the start
    start_kb: int
    peak_kb: int
    single: bool  # no other job ran at any time during this one


@dataclass(eq=False)
class Recording:
    path: str
    max_rows: int
    deadline: float  # monotonic
    file: IO[str]
    on_end: Callable[[Recording], None]
    memory: Memory  # shared with the recorder's other recordings: jobs still running may read it
    lock: threading.Lock = field(default_factory=threading.Lock)
    pending: list[tuple[object, ...]] = field(default_factory=list)
    windows: set[Window] = field(default_factory=set)
    accepted: int = 0
    written: int = 0
    dropped: int = 0
    reason: str | None = None
    ended: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    @classmethod
    def open(
        cls, path: str, max_rows: int, max_seconds: float, memory: Memory, on_end: Callable[[Recording], None]
    ) -> Recording:
        """Create the file with its header line and start the writer; RuntimeError if it cannot be written."""
        try:
            file = open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115 - the writer thread closes it
            csv.writer(file, lineterminator="\n").writerow(COLUMNS)
            file.flush()
        except OSError as exc:
            raise RuntimeError(
                f"cannot record job metrics to {path!r}: {exc.strerror or exc}; "
                f"pass the path of a file in a writable folder"
            ) from None
        recording = cls(path, max_rows, time.monotonic() + max_seconds, file, on_end, memory)
        recording.thread = threading.Thread(target=recording._write_loop, name="quebec-job-metrics", daemon=True)
        recording.thread.start()
        return recording

    # -- job threads ----------------------------------------------------------------------
    def begin(self, started_at: datetime, in_flight: int) -> Window:
        rss = self.memory.rss_kb()
        window = Window(started_at, time.perf_counter(), resource.getrusage(RUSAGE), rss, rss, single=in_flight <= 1)
        with self.lock:
            if self.windows:
                window.single = False
                for other in self.windows:
                    other.single = False
            self.windows.add(window)
        return window

    def end(self, window: Window, in_flight: int) -> tuple[int, int]:
        """(RSS now, peak during the window); clears `window.single` if another job was running."""
        rss = self.memory.rss_kb()
        with self.lock:
            self.windows.discard(window)
        window.single = window.single and in_flight <= 1
        return rss, max(window.peak_kb, rss)

    def offer(self, row: tuple[object, ...]) -> bool:
        """Buffer a row without waiting; False once this row reached the row limit."""
        with self.lock:
            if self.reason is not None:
                return True
            if len(self.pending) >= BUFFER_ROWS:
                self.dropped += 1
                return True
            self.pending.append(row)
            self.accepted += 1
            return self.accepted < self.max_rows

    def finish(self, reason: str) -> None:
        """End the recording (the first reason wins); the writer writes what is buffered and closes."""
        with self.lock:
            if self.reason is None:
                self.reason = reason
        self.ended.set()

    # -- the writer thread ----------------------------------------------------------------
    def _write_loop(self) -> None:
        writer = csv.writer(self.file, lineterminator="\n")
        try:
            while True:
                done = self.ended.wait(SAMPLE_EVERY)
                if not done and time.monotonic() >= self.deadline:
                    self.finish("time limit")
                    done = True
                self._sample()
                with self.lock:
                    rows, self.pending = self.pending, []
                if rows:
                    writer.writerows(rows)
                    self.file.flush()
                    self.written += len(rows)
                if done:
                    return
        except Exception as exc:  # noqa: BLE001 - a full disk ends the recording, never a job
            log.error("job_metrics.write_failed path=%s error=%s", self.path, exc)
            self.finish(f"write failed: {exc}")
            with self.lock:
                self.dropped += self.accepted - self.written
        finally:
            with contextlib.suppress(OSError):  # everything was flushed already
                self.file.close()
            log.info("job_metrics.stopped path=%s reason=%s", self.path, self.reason)
            log.info("job_metrics.finished path=%s rows=%d dropped=%d", self.path, self.written, self.dropped)
            self.on_end(self)

    def _sample(self) -> None:
        with self.lock:
            if not self.windows:
                return
        rss = self.memory.rss_kb()
        with self.lock:
            for window in self.windows:
                window.peak_kb = max(window.peak_kb, rss)
