"""ForkSupervisor: QUEBEC_SUPERVISOR=1 — one process per queue.yml entry copy, watched and replaced.

The supervisor forks `workers[i].processes` worker children (each with its entry's
queues, threads and polling) and `dispatchers[i].processes` dispatcher children, plus one
scheduler child when the scheduler is built. Every child runs the ordinary per-process
runtime (engine/runtime.py ProcessRuntime) with one component; its process rows carry the supervisor's
row id (`supervisor_id`). The supervisor itself runs no jobs and starts no thread: it forks,
then loops in its main thread reaping children, heartbeating its own row and acting on
signals — forking from a process with threads would copy locks held by threads that do
not exist in the child. This module is that loop; the plan of slots and what a child does
from fork() to its runtime are engine/fork_child.py.

- A child that dies is reforked, and its claims are handed back at once (at_most_once
  classes fail, as pruning does) instead of waiting for its heartbeat to expire. One that
  dies again and again within CRASH_WINDOW of starting is reforked with a growing delay
  (up to MAX_BACKOFF) and a log line naming its exit status. Exit 75 (a memory recycle)
  is reforked at once.
- Children exit if the supervisor dies: the kernel sends them SIGTERM (PR_SET_PDEATHSIG on
  Linux) and each checks its parent pid every second as well, so no orphan keeps claiming.
- TERM/INT: graceful stop of every child, then exit 0. QUIT: children and supervisor exit
  at once (pruning recovers claims). USR1/TSTP: every child goes quiet. USR2: job metrics
  toggled in every child. HUP: rolling restart — each child is replaced by a new one
  started first, then the old one is stopped gracefully, so processing never pauses.
- `spawn=` is ignored in this mode (as the seed says): queue.yml's plan decides.
- cgroup v2 (engine/cgroups.py): when a delegated subtree is usable (or limits are
  configured, which makes it required), each child moves into a fresh leaf of its own
  before it runs anything, worker leaves with their entry's memory_max. When a worker dies
  of an OOM kill, the jobs it had started (its RunningBoard, engine/running.py) fail with
  ProcessOOMKilledError naming the limit; the ones it had only claimed go back to ready.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from datetime import datetime

from quebec.config import Settings
from quebec.engine.cgroup_limits import NONE, LeafLimits, configured_limits, require_swap_accounting
from quebec.engine.cgroups import CgroupTree, CgroupUnusable, oom_verdict, usable_root
from quebec.engine.fork_child import Copy, Slot, become_child, plan
from quebec.engine.memory import RECYCLE_EXIT
from quebec.engine.process_rows import process_info
from quebec.engine.running import RunningBoard
from quebec.engine.signals import Intent, Intents
from quebec.errors import ConfigError
from quebec.registry import Registry
from quebec.store import Database, processes
from quebec.types import ErrorInfo

log = logging.getLogger("quebec.supervisor")
CRASH_WINDOW = 5.0  # a child that dies sooner than this after starting counts as a crash loop
MAX_BACKOFF = 30.0
_TICK = 0.2


class ForkSupervisor:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        registry: Registry,
        *,
        child_runtime: Callable[[Settings, str, int | None, int], int],
        roles: frozenset[str] = frozenset({"worker", "dispatcher", "scheduler"}),
    ) -> None:
        """`child_runtime(settings, role, threads, supervisor_id)` runs one child's runtime and
        returns its exit status (a ProcessRuntime, built in the child after the fork)."""
        self.db = db
        self.settings = settings
        self.registry = registry
        self._child_runtime = child_runtime
        self._roles = roles
        self.intents = Intents(extra={signal.SIGHUP: Intent.RESTART})
        self.hostname = socket.gethostname()
        self.row_id: int | None = None
        self.slots = plan(settings, roles)
        self._limited = bool(configured_limits(settings))  # limits a child must not run without
        self.cgroups: CgroupTree | None = None
        self._copies: dict[int, Copy] = {}
        self._stopping = False
        self._next_heartbeat = 0.0

    # -- the main loop ----------------------------------------------------------------------
    def run(self) -> int:
        self.intents.install()
        try:
            self._open_cgroups()
            self._register()
            log.info(
                "supervisor.started id=%s pid=%d children=%s",
                self.row_id,
                os.getpid(),
                ",".join(slot.label for slot in self.slots),
            )
            for slot in self.slots:
                self._fork(slot)
            while True:
                intent = self.intents.get(timeout=_TICK)
                if intent is Intent.STOP:
                    return self._stop_all(signal.SIGTERM)
                if intent is Intent.QUIT:
                    log.warning("supervisor.quit: children exit at once; claims are recovered by pruning")
                    return self._stop_all(signal.SIGQUIT, wait=2.0)
                if intent is Intent.QUIET:
                    self._signal_children(signal.SIGUSR1)
                if intent is Intent.METRICS:
                    self._signal_children(signal.SIGUSR2)
                if intent is Intent.RESTART:
                    self._rolling_restart()
                self._reap()
                self._refork_due()
                self._heartbeat()
        finally:
            self.intents.close()
            self._deregister()
            self._close_cgroups()

    def _open_cgroups(self) -> None:
        """Lay out the cgroup tree: required with limits (or QUEBEC_CGROUP=on), else when usable."""
        s = self.settings
        if s.cgroup == "off":
            return
        limits = configured_limits(s)
        try:
            tree = CgroupTree(usable_root(s), s.workers_pool_memory_max)
            tree.prepare()
        except CgroupUnusable as err:
            if limits or s.cgroup == "on":
                raise ConfigError(f"{limits[0] if limits else 'QUEBEC_CGROUP=on'} cannot be applied: {err}") from None
            log.debug("cgroup.unused: %s", err)
            return
        require_swap_accounting(s, tree.workers)
        self.cgroups = tree
        log.info("cgroup.tree root=%s limits=%s", tree.root, ",".join(limits) or "none")

    def _new_copy(self, slot: Slot) -> Copy | None:
        """A fresh leaf (and, for a worker, a running board) for the child about to fork; None: not now."""
        if self.cgroups is None:
            return Copy()
        limits = NONE
        if slot.role == "worker" and slot.settings.workers:
            limits = LeafLimits.of(slot.settings.workers[0])
        elif slot.role == "dispatcher" and slot.settings.dispatchers:
            limits = LeafLimits.of(slot.settings.dispatchers[0])
        try:
            leaf = self.cgroups.new_leaf(slot.role, slot.index, limits)
        except CgroupUnusable as err:
            if self._limited:
                log.error("cgroup.leaf_failed child=%s: %s; trying again shortly", slot.label, err)
                slot.not_before = time.monotonic() + 1.0
                return None
            log.warning("cgroup.leaf_failed child=%s: %s; it runs without a cgroup of its own", slot.label, err)
            return Copy()
        board = RunningBoard(2 * (slot.threads or 1) + 8) if slot.role == "worker" else None
        return Copy(leaf, board)

    def _fork(self, slot: Slot) -> None:
        copy = self._new_copy(slot)
        if copy is None:
            return
        pid = os.fork()
        if pid == 0:  # the child: never returns
            become_child(
                slot, copy, intents=self.intents, db=self.db, limits_configured=self._limited, run=self._runs(slot)
            )
        self._copies[pid] = copy
        slot.pid, slot.started = pid, time.monotonic()
        where = f" cgroup={copy.leaf.path}" if copy.leaf else ""
        log.info("supervisor.forked child=%s pid=%d%s", slot.label, pid, where)

    def _runs(self, slot: Slot) -> Callable[[], int]:
        """What a forked child of `slot` runs: its runtime, under the supervisor's row."""

        def run() -> int:
            assert self.row_id is not None
            return self._child_runtime(slot.settings, slot.role, slot.threads, self.row_id)

        return run

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            code = os.waitstatus_to_exitcode(status)
            self._release_claims_of(pid, *self._verdict(pid, code))
            for slot in self.slots:
                if pid in slot.retiring:
                    slot.retiring.remove(pid)
                    log.info("supervisor.retired child=%s pid=%d code=%d", slot.label, pid, code)
                elif slot.pid == pid:
                    slot.pid = None
                    self._died(slot, pid, code)

    def _died(self, slot: Slot, pid: int, code: int) -> None:
        if self._stopping:
            return
        lived = time.monotonic() - slot.started
        if code == RECYCLE_EXIT:
            log.info(
                "supervisor.recycle child=%s pid=%d: it exited %d (memory); starting a new one", slot.label, pid, code
            )
            slot.failures, slot.not_before = 0, 0.0
            return
        slot.failures = slot.failures + 1 if lived < CRASH_WINDOW else 1
        delay = 0.0 if slot.failures <= 1 else min(MAX_BACKOFF, 0.5 * 2 ** (slot.failures - 2))
        slot.not_before = time.monotonic() + delay
        log.warning(
            "supervisor.child_died child=%s pid=%d code=%d after %.1fs: its claims were handed back; "
            "starting a new one%s",
            slot.label,
            pid,
            code,
            lived,
            f" in {delay:.1f}s ({slot.failures} quick deaths in a row)" if delay else "",
        )

    def _refork_due(self) -> None:
        if self._stopping:
            return
        now = time.monotonic()
        for slot in self.slots:
            if slot.pid is None and now >= slot.not_before:
                self._fork(slot)

    def _verdict(self, pid: int, code: int) -> tuple[frozenset[int], ErrorInfo | None, bool]:
        """(jobs to fail, their error, whether the rest are known not to have started) for a reaped child."""
        copy = self._copies.pop(pid, Copy())
        if copy.leaf is None or self.cgroups is None:
            return frozenset(), None, False
        try:
            verdict = oom_verdict(self.cgroups, copy.leaf, copy.board, pid, code)
        finally:
            self.cgroups.remove(copy.leaf)
            if copy.board is not None:
                copy.board.close()
        if verdict is None:
            return frozenset(), None, False
        log.warning("supervisor.oom_killed pid=%d failing=%s: %s", pid, sorted(verdict.running), verdict.error.message)
        return verdict.running, verdict.error, verdict.complete

    def _release_claims_of(
        self, pid: int, failing: frozenset[int] = frozenset(), error: ErrorInfo | None = None, known: bool = False
    ) -> None:
        """Hand a dead child's claims back now (its process rows pruned), not at heartbeat expiry.
        `failing` (what an OOM-killed worker was running) fail with `error`; when the board is
        `known` complete, at_most_once jobs it had not started go back to ready too."""
        try:
            mine = self.db.read(processes.children, supervisor_id=self.row_id, pid=pid)
            if mine:
                at_most_once = [] if known else [c.__qualname__ for c in self.registry.classes() if c.at_most_once]
                pruned = self.db.transact(
                    processes.prune_dead,
                    stale_before=_EPOCH,
                    dead_ids=mine,
                    at_most_once=at_most_once,
                    failing=failing,
                    failing_error=error,
                )
                if pruned.released or pruned.failed:
                    log.info(
                        "supervisor.claims_released pid=%d released=%s failed=%s",
                        pid,
                        list(pruned.released),
                        list(pruned.failed),
                    )
        except Exception:  # noqa: BLE001 - pruning by the others' maintenance recovers them later
            log.exception("supervisor.release_failed pid=%d: pruning will recover its claims", pid)

    # -- signals to children ------------------------------------------------------------------
    def _signal_children(self, signum: int) -> None:
        for slot in self.slots:
            for pid in [slot.pid, *slot.retiring]:
                if pid is not None:
                    _kill(pid, signum)

    def _rolling_restart(self) -> None:
        """Replace each child: the new copy starts first, then the old one stops gracefully."""
        log.info("supervisor.rolling_restart children=%d", len(self.slots))
        for slot in self.slots:
            old = slot.pid
            self._fork(slot)
            if old is not None:
                slot.retiring.append(old)
                _kill(old, signal.SIGTERM)

    def _stop_all(self, signum: int, wait: float | None = None) -> int:
        self._stopping = True
        self._signal_children(signum)
        deadline = time.monotonic() + (wait if wait is not None else self.settings.shutdown_timeout + 10.0)
        while self._running() and time.monotonic() < deadline:
            if self.intents.get(timeout=0.05) is Intent.STOP:
                log.warning("supervisor.stop_again: stopping the children at once")
                self._signal_children(signal.SIGQUIT)
            self._reap()
        for slot in self.slots:
            for pid in [slot.pid, *slot.retiring]:
                if pid is not None:
                    log.warning("supervisor.kill child=%s pid=%d: it did not stop in time", slot.label, pid)
                    _kill(pid, signal.SIGKILL)
        self._reap()
        return 0

    def _running(self) -> bool:
        return any(slot.pid is not None or slot.retiring for slot in self.slots)

    def _close_cgroups(self) -> None:
        """Remove the leaves of children already gone; the supervisor's own leaf stays (it is in it)."""
        if self.cgroups is None:
            return
        for pid, copy in list(self._copies.items()):
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0] == 0:
                    continue  # still running (killed at stop): the next start-up removes its leaf
            if copy.leaf is not None:
                self.cgroups.remove(copy.leaf)
            del self._copies[pid]

    # -- own process row --------------------------------------------------------------------------
    def _register(self) -> None:
        extra = {"children": [slot.label for slot in self.slots]}
        info, _ = process_info("Supervisor", "supervisor", self.hostname, extra)
        self.row_id = self.db.transact(processes.register, info=info)

    def _heartbeat(self) -> None:
        now = time.monotonic()
        if now < self._next_heartbeat or self.row_id is None:
            return
        self._next_heartbeat = now + self.settings.process_heartbeat_interval
        try:
            if self.db.transact(processes.heartbeat_many, process_ids=[self.row_id]):
                log.warning("supervisor.pruned id=%s: registering again", self.row_id)
                self._register()
        except Exception:  # noqa: BLE001 - the database may be down; children hold their own rows
            log.exception("supervisor.heartbeat_failed")

    def _deregister(self) -> None:
        if self.row_id is None:
            return
        try:
            self.db.transact(processes.deregister, process_id=self.row_id)
        except Exception:  # noqa: BLE001
            log.exception("supervisor.deregister_failed id=%s", self.row_id)


_EPOCH = datetime(1970, 1, 1)  # "stale before": only the dead ids named are pruned


def _kill(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
