"""Signals → intents. A handler only records the intent; the supervisor's main loop acts on it."""

from __future__ import annotations

import queue
import signal
import sys
import threading
from collections.abc import Callable
from enum import StrEnum
from types import FrameType


class Intent(StrEnum):
    STOP = "stop"  # TERM, INT: graceful
    QUIT = "quit"  # QUIT: at once
    QUIET = "quiet"  # USR1, TSTP: stop claiming
    METRICS = "metrics"  # USR2: start or stop recording per-job metrics
    RECYCLE = "recycle"  # the memory watch: drain, then exit 75 (no signal)


_SIGNALS = {
    signal.SIGTERM: Intent.STOP,
    signal.SIGINT: Intent.STOP,
    signal.SIGQUIT: Intent.QUIT,
    signal.SIGUSR1: Intent.QUIET,
    signal.SIGUSR2: Intent.METRICS,
}


class Intents:
    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Intent] = queue.SimpleQueue()
        self.arrived = threading.Event()
        self._previous: dict[int, object] = {}
        self._closed = False

    def put(self, intent: Intent) -> None:
        self._queue.put(intent)
        self.arrived.set()

    def get(self, timeout: float) -> Intent | None:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def install(self) -> bool:
        """Install handlers when called on the main thread; False elsewhere (then stop through qc.stop())."""
        if threading.current_thread() is not threading.main_thread():
            return False
        wanted = dict(_SIGNALS)
        # TSTP means quiet only when nobody is at a terminal to press ^Z.
        if not sys.stdin or not sys.stdin.isatty():
            wanted[signal.SIGTSTP] = Intent.QUIET
        for signum, intent in wanted.items():
            self._previous[signum] = signal.signal(signum, self._handler(intent))
        return True

    def _handler(self, intent: Intent) -> Callable[[int, FrameType | None], None]:
        def handle(signum: int, frame: FrameType | None) -> None:
            if self._closed:
                # The runtime stopped but nobody could restore the handlers from the main
                # thread (qc.start() stopped by a signal, no qc.wait()): give this signal,
                # and every later one, the behaviour it had before us. The previous handler
                # is called directly: re-raising would loop forever if it was restored already.
                previous = self._previous.get(signum, signal.SIG_DFL)
                self.restore()
                signal.signal(signum, previous)  # type: ignore[arg-type]
                if callable(previous):
                    previous(signum, frame)
                elif previous != signal.SIG_IGN:
                    signal.raise_signal(signum)
                return
            self.put(intent)

        return handle

    def close(self) -> None:
        """No one reads intents any more: restore the handlers now if we can, else at the next signal."""
        self._closed = True
        if threading.current_thread() is threading.main_thread():
            self.restore()

    def restore(self) -> None:
        # _previous is kept: a later runtime may have captured our handler as its own
        # "previous" and put it back; a signal reaching it then still finds the original.
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
