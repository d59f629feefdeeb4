"""Runnable: a thread that calls run_once() and sleeps for the delay it returns, or until woken."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("quebec.engine")


class Runnable:
    name = "runnable"

    def __init__(self) -> None:
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._errors = 0

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def run_once(self) -> float:
        """Do one unit of work; return seconds to sleep before the next (0 = at once)."""
        raise NotImplementedError

    def finish(self) -> None:
        """Called in the loop's thread once it stops: release what run_once() held."""

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"quebec-{self.name}", daemon=True)
        self._thread.start()

    def wake_up(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                delay = self.run_once()
                self._errors = 0
            except Exception:
                # An engine loop never dies of one bad round (database down, a bug):
                # it logs and tries again with a capped backoff.
                self._errors += 1
                delay = min(10.0, 0.1 * 2 ** min(self._errors, 7))
                log.exception("%s.error attempt=%d retry_in=%.1fs", self.name, self._errors, delay)
            if delay > 0 and not self._stopping.is_set():
                self._wake.wait(delay)
            self._wake.clear()
        self.finish()
