"""The graceful shutdown of one process's components, in the order that loses no job.

Workers stop claiming and hand back the jobs they claimed but have not started; running
Continuable jobs are told to stop at their next checkpoint (they are enqueued again with
their progress); running jobs get `timeout` seconds; jobs still running then are handed back to ready (they run
again; at_most_once ones fail); completers write what is left; the other loops stop.
A second TERM/INT during the grace period cuts it short; QUIT leaves at once.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from quebec.engine.assembly import Components
from quebec.engine.signals import Intent, Intents
from quebec.hooks import Hooks

log = logging.getLogger("quebec.supervisor")


def shut_down(
    parts: Components, *, timeout: float, intents: Intents, hooks: Hooks, monotonic: Callable[[], float]
) -> None:
    parts.stopping.set()
    for worker in parts.workers:
        worker.go_quiet()
        worker.stop()
        # A claim in flight could hand the lane jobs after we emptied it: wait for it.
        worker.join(5.0)
        released = worker.release_unstarted()
        if released:
            log.info("job.released count=%d (claimed, not started)", len(released))
    deadline = monotonic() + timeout
    while monotonic() < deadline and not all(w.lane.is_idle() for w in parts.workers):
        intent = intents.get(timeout=0.05)
        if intent is Intent.STOP:
            log.warning("supervisor.stop_again: not waiting for running jobs any longer")
            break
        if intent is Intent.QUIT:
            os._exit(0)
    for worker in parts.workers:
        if not worker.lane.is_idle():
            again = worker.release_running()
            log.warning(
                "job.released_running count=%d: still running after shutdown_timeout=%.1fs; they will run again",
                len(again),
                timeout,
            )
        worker.lane.close()
        hooks.run("worker_stop")
    for unit in parts.units:
        unit.completer.close(timeout=max(5.0, timeout))
    for loop in parts.loops():
        loop.stop()
        loop.join(2.0)
    if parts.notifier is not None:
        parts.notifier.stop()
