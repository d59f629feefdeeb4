"""Maintenance: heartbeats for this OS process's components, and pruning dead processes.

A process on this host whose pid is gone (or now belongs to a younger process) is
dead at once; one elsewhere is dead when its heartbeat is older than the alive
threshold. Its claims go back to ready, except for at-most-once classes, which fail.
Every host may prune at once: the transition is guarded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta

import psutil

from quebec.engine.runnable import Runnable
from quebec.store import Database, processes

log = logging.getLogger("quebec.maintenance")


def pid_alive(pid: int, started_at: float | None) -> bool:
    try:
        proc = psutil.Process(pid)
        if started_at is not None and abs(proc.create_time() - started_at) > 1.0:
            return False  # the pid was reused by another process
        return proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


class Maintenance(Runnable):
    name = "maintenance"

    def __init__(
        self,
        db: Database,
        *,
        hostname: str,
        heartbeat_interval: float,
        alive_threshold: float,
        process_ids: Callable[[], list[int]],
        on_pruned: Callable[[list[int]], None],
        at_most_once: Callable[[], list[str]],
        prune_interval: float | None = None,
    ) -> None:
        super().__init__()
        self._db = db
        self._hostname = hostname
        self._heartbeat_interval = heartbeat_interval
        self._alive_threshold = alive_threshold
        self._prune_interval = prune_interval or min(heartbeat_interval, 5.0)
        self._process_ids = process_ids
        self._on_pruned = on_pruned
        self._at_most_once = at_most_once
        self._next_heartbeat = 0.0
        self._next_prune = 0.0

    def run_once(self) -> float:
        now = time.monotonic()
        if now >= self._next_heartbeat:
            self.heartbeat()
            self._next_heartbeat = now + self._heartbeat_interval
        if now >= self._next_prune:
            self.prune()
            self._next_prune = now + self._prune_interval
        return max(0.05, min(self._next_heartbeat, self._next_prune) - time.monotonic())

    def heartbeat(self) -> None:
        ids = self._process_ids()
        missing = self._db.transact(processes.heartbeat_many, process_ids=ids)
        if missing:
            log.warning("process.pruned_while_alive ids=%s; registering again", missing)
            self._on_pruned(missing)

    def prune(self) -> None:
        own = set(self._process_ids())
        local = self._db.read(processes.on_host, hostname=self._hostname)
        dead = [
            p["id"] for p in local if p["id"] not in own and not pid_alive(p["pid"], p["metadata"].get("started_at"))
        ]
        stale_before = self._db.clock.now() - timedelta(seconds=self._alive_threshold)
        pruned = self._db.transact(
            processes.prune_dead, stale_before=stale_before, dead_ids=dead, at_most_once=self._at_most_once()
        )
        if pruned.process_ids or pruned.released or pruned.failed:
            log.warning(
                "process.pruned ids=%s released=%d failed=%d",
                list(pruned.process_ids),
                len(pruned.released),
                len(pruned.failed),
            )
