"""RunningBoard: which jobs a forked worker child has started, readable after the kernel killed it.

A claimed job may be waiting in the lane (prefetched) or running. When the OOM killer
kills a worker, only the jobs that were running are to blame, so only those fail; the
others go back to ready. The child cannot say which were which once it is dead, so it
writes it down as it goes: the supervisor maps a small shared anonymous page before the
fork, the child marks a job id when perform starts and clears it when perform returns,
and the supervisor reads the page after reaping the child.
"""

from __future__ import annotations

import mmap
import struct
import threading

from quebec.engine.executor import Executor
from quebec.engine.outcomes import Outcome
from quebec.types import ClaimedJob

_CELL = struct.Struct("q")


class RunningBoard:
    """Job ids in progress, in `capacity` cells of shared memory; cell 0 counts overflows."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._map = mmap.mmap(-1, _CELL.size * (capacity + 1))  # anonymous, MAP_SHARED: a fork sees it
        self._lock = threading.Lock()  # only the child's threads write

    def started(self, job_id: int) -> None:
        with self._lock:
            for cell in range(1, self.capacity + 1):
                if self._get(cell) == 0:
                    self._set(cell, job_id)
                    return
            self._set(0, self._get(0) + 1)

    def ended(self, job_id: int) -> None:
        with self._lock:
            for cell in range(1, self.capacity + 1):
                if self._get(cell) == job_id:
                    self._set(cell, 0)
                    return

    def running(self) -> frozenset[int]:
        """The job ids marked started and not ended."""
        return frozenset(v for v in (self._get(c) for c in range(1, self.capacity + 1)) if v)

    @property
    def overflowed(self) -> bool:
        """More jobs ran at once than there are cells: `running()` may miss some."""
        return self._get(0) > 0

    def close(self) -> None:
        self._map.close()

    def _get(self, cell: int) -> int:
        value: int = _CELL.unpack_from(self._map, cell * _CELL.size)[0]
        return value

    def _set(self, cell: int, value: int) -> None:
        _CELL.pack_into(self._map, cell * _CELL.size, value)


class _Installed:
    board: RunningBoard | None = None


def install(board: RunningBoard | None) -> None:
    """Called in a forked worker child, before its runtime is built: its executors mark this board."""
    _Installed.board = board


def installed() -> RunningBoard | None:
    return _Installed.board


class MarkingExecutor(Executor):
    """The worker's executor with every perform marked on the board; nothing else changes.

    Like MeteredExecutor it takes the wrapped executor's state rather than building one.
    """

    def __init__(self, inner: Executor, board: RunningBoard) -> None:
        self.__dict__.update(vars(inner))
        self._inner = inner
        self._board = board

    def perform(self, job: ClaimedJob) -> Outcome:
        self._board.started(job.id)
        try:
            return self._inner.perform(job)
        finally:
            self._board.ended(job.id)
