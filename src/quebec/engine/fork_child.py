"""The fork supervisor's children (engine/forking.py runs the loop that keeps them going):
the plan of slots, one per copy of a queue.yml entry with the settings its child runs, and
what a forked child does between fork() and its runtime.

A child moves into its cgroup leaf before anything else runs (what it allocates is charged
there), installs its running board, asks to die with its parent (PR_SET_PDEATHSIG, and a
thread checking its parent pid every second), drops the parent's pooled connections and
signal handlers, then runs one ProcessRuntime and exits with its status. It never returns
into the supervisor's loop.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from typing import NoReturn

from quebec.config import Settings
from quebec.engine.cgroups import CgroupTree, Leaf
from quebec.engine.running import RunningBoard, install
from quebec.engine.signals import Intents
from quebec.store import Database

log = logging.getLogger("quebec.supervisor")
_PR_SET_PDEATHSIG = 1


@dataclass(eq=False)
class Slot:
    """One child to keep running: its role and settings; the pid of the copy that runs now."""

    role: str  # "worker" | "dispatcher" | "scheduler"
    label: str  # e.g. "worker[0].1"
    settings: Settings
    threads: int | None = None
    index: int = 0  # among the slots of its role: its cgroup leaf is <role>-<index>
    pid: int | None = None
    started: float = 0.0
    failures: int = 0
    not_before: float = 0.0
    retiring: list[int] = field(default_factory=list)  # old copies stopping after a HUP


@dataclass(eq=False)
class Copy:
    """One forked child's cgroup leaf and running board (None without cgroups)."""

    leaf: Leaf | None = None
    board: RunningBoard | None = None


def plan(s: Settings, roles: Collection[str]) -> list[Slot]:
    """The slots of `roles`: `processes` copies of each worker and dispatcher entry, each with
    settings naming that entry alone, and one scheduler."""
    slots: list[Slot] = []
    for i, w in enumerate(s.workers if "worker" in roles else ()):
        child = replace(
            s,
            worker_queues=w.queues,
            worker_threads=w.threads,
            worker_polling_interval=w.polling_interval,
            workers=(w,),
        )
        slots += [
            Slot("worker", f"worker[{i}].{n}", child, threads=w.threads, index=len(slots) + n)
            for n in range(w.processes)
        ]
    first_dispatcher = len(slots)
    for i, d in enumerate(s.dispatchers if "dispatcher" in roles else ()):
        child = replace(
            s,
            dispatcher_polling_interval=d.polling_interval,
            dispatcher_batch_size=d.batch_size,
            dispatchers=(d,),
        )
        slots += [
            Slot("dispatcher", f"dispatcher[{i}].{n}", child, index=len(slots) - first_dispatcher + n)
            for n in range(d.processes)
        ]
    if "scheduler" in roles:
        slots.append(Slot("scheduler", "scheduler", s))
    return slots


def become_child(
    slot: Slot,
    copy: Copy,
    *,
    intents: Intents,
    db: Database,
    limits_configured: bool,
    run: Callable[[], int],
) -> NoReturn:
    """The forked child, from fork() on: `run()` is its runtime; the process exits with its status."""
    code = 1
    try:
        if copy.leaf is not None:
            _enter(slot, copy.leaf, limits_configured)  # before anything runs: what it allocates is charged there
        install(copy.board)
        parent = os.getppid()
        _die_with_parent()
        if os.getppid() != parent:  # it died before the kernel could be told
            os._exit(0)
        intents.restore()  # the child's runtime installs its own handlers
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        db.dispose(close=False)  # the parent's pooled connections are not ours
        _watch_parent(parent)
        code = run()
    except BaseException:  # noqa: BLE001 - a child reports and exits; it never returns into the parent's loop
        log.exception("supervisor.child_failed child=%s", slot.label)
    finally:
        logging.shutdown()
        os._exit(code)


def _enter(slot: Slot, leaf: Leaf, limits_configured: bool) -> None:
    try:
        CgroupTree.enter(leaf)
    except OSError as err:
        if limits_configured:
            raise  # a limit that does not hold: this child must not run (the supervisor reforks it)
        log.warning("cgroup.enter_failed child=%s path=%s: %s; it runs without a leaf", slot.label, leaf.path, err)


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when its parent dies (a no-op elsewhere)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _watch_parent(parent: int) -> None:
    """Stop this child (SIGTERM to itself) if its parent goes away: the portable twin of prctl."""

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                log.warning("supervisor.gone parent=%d: stopping this child", parent)
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch, name="quebec-parent-watch", daemon=True).start()
