"""Pulse: an in-process signal that jobs reached an end, for waiters in the same process.

The store's outcome writers beat it after their transaction commits; `wait()` blocks
until the next beat (or a timeout). A beat carries no data: a waiter reads the rows it
cares about again, so a missed or spurious beat costs a query, never a wrong answer.
"""

from __future__ import annotations

import threading


class Pulse:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._beats = 0

    @property
    def beats(self) -> int:
        with self._cond:
            return self._beats

    def beat(self) -> None:
        with self._cond:
            self._beats += 1
            self._cond.notify_all()

    def wait(self, since: int, timeout: float) -> int:
        """Block until a beat after `since` (a value of `beats`) or `timeout`; returns `beats`."""
        with self._cond:
            self._cond.wait_for(lambda: self._beats != since, timeout)
            return self._beats
