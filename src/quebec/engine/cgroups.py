"""cgroup v2 memory limits for the fork supervisor's children, and OOM kills told apart.

The supervisor lays out a delegated subtree (QUEBEC_CGROUP_ROOT, or its own cgroup) the
way the Rust Quebec 0.4.2 does::

    <root>/
      control/               no process of its own
        supervisor/          the supervisor, if it started in <root> (cgroup v2: no internal processes)
        dispatcher-0/        one leaf per dispatcher / scheduler child
        scheduler-0/
      workers/               memory.max = QUEBEC_WORKERS_POOL_MEMORY_MAX (or max), oom.group 0
        worker-0/            memory.max = the queue.yml entry's memory_max, oom.group 1
        worker-1/

The memory controller is enabled in cgroup.subtree_control on the way down. Every child
gets a fresh leaf (a new directory each time it is forked, so the counters in its
memory.events start at zero) and moves itself into it before it runs anything; when it is
reaped, the supervisor reads the leaf's memory.events: an `oom_kill` there means the kernel
killed it for memory, and which limit was hit says whose fault it was. Then the leaf is
removed (cgroup.kill first, for grandchildren a job left behind).

Configured limits are a promise: if they cannot be applied, starting fails with a
sentence saying why (`usable_root` raises CgroupUnusable). Without limits (and with
QUEBEC_CGROUP=auto) the tree is built when a usable subtree is there and skipped quietly
when not. QUEBEC_CGROUP_ROOT unset means the supervisor's own cgroup, never the root of the
whole hierarchy.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from quebec.config import Settings
from quebec.config.sizes import UNLIMITED, Size, show_size
from quebec.engine.cgroup_limits import LeafLimits, files
from quebec.engine.running import RunningBoard
from quebec.types import ErrorInfo

log = logging.getLogger("quebec.cgroups")
CONTROL, WORKERS, SUPERVISOR = "control", "workers", "supervisor"
CONTROLLER = "memory"
OOM_ERROR = "ProcessOOMKilledError"
_LEAF = re.compile(r"(worker|dispatcher|scheduler)-\d+(\.\d+)?")  # never "supervisor"
_REMOVE_ATTEMPTS = 8


class CgroupUnusable(Exception):
    """No usable cgroup v2 subtree, or the tree could not be laid out: the sentence says why."""


@dataclass(frozen=True)
class Leaf:
    """One child's cgroup: `worker-0` under workers/, `dispatcher-0` under control/."""

    name: str  # worker-0 (the slot), whatever suffix the directory got
    path: str
    memory_max: Size | None


@dataclass(frozen=True)
class Death:
    """What a reaped child's leaf says about how it died."""

    oom_kills: int
    own_limit_hit: bool  # memory.events `max` > 0: it reached its own memory.max
    pool_limit_hit: bool  # the workers pool reached its memory.max while it ran


@dataclass(frozen=True)
class Verdict:
    """A worker the OOM killer killed: the jobs it was running fail with `error`."""

    running: frozenset[int]
    error: ErrorInfo
    complete: bool  # the board kept up (no overflow): every other claim had not started


def usable_root(
    settings: Settings,
    *,
    mounts: str = "/proc/mounts",
    self_cgroup: str = "/proc/self/cgroup",
    platform: str = sys.platform,
) -> str:
    """The directory to lay the tree out in; CgroupUnusable(reason) when there is none."""
    if not platform.startswith("linux"):
        raise CgroupUnusable(f"cgroups exist only on Linux, and this is {platform}")
    mountpoints = _cgroup2_mounts(_read(mounts) or "")
    if not mountpoints:
        raise CgroupUnusable(
            f"no cgroup2 file system is mounted ({mounts} lists none); cgroup v1 and hybrid hierarchies cannot "
            f"apply these limits"
        )
    if settings.cgroup_root is not None:
        root = os.path.abspath(settings.cgroup_root)
        label = f"QUEBEC_CGROUP_ROOT={settings.cgroup_root}"
        if not os.path.isdir(root):
            raise CgroupUnusable(f"{label} is not a directory; point it at a delegated cgroup v2 subtree")
        if not any(root == m or root.startswith(m.rstrip("/") + "/") for m in mountpoints):
            raise CgroupUnusable(
                f"{label} is not inside a cgroup2 mount ({', '.join(mountpoints)}); point it at a delegated "
                f"cgroup v2 subtree"
            )
    else:
        own = _own_path(_read(self_cgroup) or "")
        if own is None:
            raise CgroupUnusable(f"{self_cgroup} has no cgroup v2 (0::) line; set QUEBEC_CGROUP_ROOT")
        if own == "/":
            raise CgroupUnusable(
                "this process is in the root cgroup, which Quebec does not take over; run it in a delegated "
                "subtree (systemd Delegate=yes) or set QUEBEC_CGROUP_ROOT"
            )
        root = os.path.join(mountpoints[0], own.lstrip("/"))
        label = f"this process's cgroup {root}"
        if not os.path.isdir(root):
            raise CgroupUnusable(f"{label} is not visible under {mountpoints[0]}; set QUEBEC_CGROUP_ROOT")
    for target in (root, os.path.join(root, "cgroup.procs"), os.path.join(root, "cgroup.subtree_control")):
        if not os.access(target, os.W_OK):
            raise CgroupUnusable(
                f"{label}: {target} is not writable by this process; delegate the subtree to this user "
                f"(systemd Delegate=yes) or run as its owner"
            )
    controllers = (_read(os.path.join(root, "cgroup.controllers")) or "").split()
    if CONTROLLER not in controllers:
        raise CgroupUnusable(
            f"{label} has no memory controller (cgroup.controllers: {' '.join(controllers) or 'none'}); enable "
            f"it in the parent's cgroup.subtree_control (systemd Delegate=yes does)"
        )
    return root


class CgroupTree:
    """The supervisor's subtree: prepared once, then a fresh leaf per child."""

    def __init__(self, root: str, pool_max: Size | None = None, *, rmdir: Callable[[str], None] = os.rmdir) -> None:
        """`rmdir` removes a leaf: os.rmdir on cgroupfs (its files are the kernel's); tests lay a
        plain directory tree out instead and pass one that empties the directory first."""
        self.root = root
        self._rmdir = rmdir
        self.pool_max = pool_max
        self.control = os.path.join(root, CONTROL)
        self.workers = os.path.join(root, WORKERS)
        self._pool_max_events = 0

    def prepare(self) -> None:
        """Move the supervisor out of the root into control/supervisor (if it is in the root), enable
        memory on the way down, set the pool limit."""
        me = str(os.getpid())
        members = (_read(os.path.join(self.root, "cgroup.procs")) or "").split()
        others = [p for p in members if p != me]
        if others and CONTROLLER not in (_read(os.path.join(self.root, "cgroup.subtree_control")) or "").split():
            # Checked before anything moves: a failed attempt must leave the subtree as it was.
            raise CgroupUnusable(self._why(OSError(errno.EBUSY, "busy", self.root)))
        try:
            os.makedirs(self.control, exist_ok=True)
            if me in members:  # started inside the root (systemd's Delegate=yes): out of the way, as the wheel does
                supervisor = os.path.join(self.control, SUPERVISOR)
                os.makedirs(supervisor, exist_ok=True)
                _write(os.path.join(supervisor, "cgroup.procs"), me)
            self._enable(self.root)
            self._enable(self.control)
            os.makedirs(self.workers, exist_ok=True)
            _write(os.path.join(self.workers, "memory.max"), _kernel(self.pool_max))
            _write(os.path.join(self.workers, "memory.oom.group"), "0")
            self._enable(self.workers)
        except OSError as err:
            raise CgroupUnusable(self._why(err)) from None
        self._scavenge()
        self._pool_max_events = self._pool_events()

    def _scavenge(self) -> None:
        """Remove the empty leaves a previous supervisor left (killed before it could); rmdir
        refuses the ones that still hold processes (an old copy still stopping), so they stay."""
        for parent in (self.workers, self.control):
            for name in sorted(os.listdir(parent)):
                path = os.path.join(parent, name)
                if _LEAF.fullmatch(name) and os.path.isdir(path) and _try_rmdir(path, self._rmdir):
                    log.info("cgroup.removed_leftover path=%s", path)

    def _enable(self, path: str) -> None:
        enabled = (_read(os.path.join(path, "cgroup.subtree_control")) or "").split()
        if CONTROLLER not in enabled:
            _write(os.path.join(path, "cgroup.subtree_control"), f"+{CONTROLLER}")

    def _why(self, err: OSError) -> str:
        if err.errno == errno.EBUSY:
            me = str(os.getpid())
            others = [p for p in (_read(os.path.join(self.root, "cgroup.procs")) or "").split() if p != me]
            return (
                f"cgroup {self.root} still holds other processes ({', '.join(others) or 'unknown'}), so the memory "
                f"controller cannot be enabled below it (cgroup v2 allows no processes in an inner cgroup); give "
                f"Quebec a subtree of its own (systemd Delegate=yes, DelegateSubgroup=) and set QUEBEC_CGROUP_ROOT"
            )
        return (
            f"cannot lay out the cgroup tree in {self.root} ({err.strerror or err} on {err.filename}); "
            f"delegate that subtree to this process (systemd Delegate=yes)"
        )

    def new_leaf(self, role: str, index: int, limits: LeafLimits) -> Leaf:
        """A fresh, empty leaf for a child about to be forked, with its limits already written
        (engine/cgroup_limits.py)."""
        parent = self.workers if role == "worker" else self.control
        name = f"{role}-{index}"
        base = os.path.join(parent, name)
        path = base
        for attempt in range(1, 100):
            path = base if attempt == 1 else f"{base}.{attempt}"
            try:
                os.mkdir(path)
                break
            except FileExistsError:
                if _try_rmdir(path, self._rmdir):  # a predecessor's leaf that was left behind, empty
                    os.mkdir(path)
                    break
        else:
            raise CgroupUnusable(f"no free cgroup directory for {name} under {parent}; remove the stale ones")
        try:
            for file, value in files(limits, path):
                _write(os.path.join(path, file), value)
        except OSError as err:
            _try_rmdir(path, self._rmdir)
            raise CgroupUnusable(f"cannot write the memory limits of {path} ({err.strerror or err})") from None
        return Leaf(name, path, limits.memory_max)

    @staticmethod
    def enter(leaf: Leaf) -> None:
        """Move the calling process into its leaf: the first thing a forked child does."""
        _write(os.path.join(leaf.path, "cgroup.procs"), "0")

    def death(self, leaf: Leaf) -> Death:
        """Read a reaped child's memory.events (before remove)."""
        events = _keyed(_read(os.path.join(leaf.path, "memory.events")) or "")
        pool_now = self._pool_events()
        pool_hit = pool_now > self._pool_max_events
        if leaf.path.startswith(self.workers + os.sep):
            self._pool_max_events = pool_now
        return Death(events.get("oom_kill", 0), events.get("max", 0) > 0, pool_hit)

    def _pool_events(self) -> int:
        return _keyed(_read(os.path.join(self.workers, "memory.events.local")) or "").get("max", 0)

    def remove(self, leaf: Leaf) -> None:
        """Remove a dead child's leaf, killing what a job left running in it."""
        if _try_rmdir(leaf.path, self._rmdir):
            return
        kill = os.path.join(leaf.path, "cgroup.kill")
        try:
            if os.path.exists(kill):
                _write(kill, "1")
        except OSError as err:
            log.warning("cgroup.kill_failed path=%s: %s", leaf.path, err)
        delay = 0.002
        for _ in range(_REMOVE_ATTEMPTS):
            if _try_rmdir(leaf.path, self._rmdir):
                return
            time.sleep(delay)  # cgroup.kill delivers SIGKILL; the members take a moment to go
            delay = min(delay * 2, 0.05)
        log.warning("cgroup.leaf_left path=%s: still busy; the next start-up removes it", leaf.path)

    def oom_message(self, leaf: Leaf, death: Death, pid: int) -> str:
        """The error recorded on the jobs the OOM-killed child was running."""
        where = f"{leaf.name} (pid {pid}) was killed by the kernel OOM killer"
        if death.own_limit_hit and leaf.memory_max is not None:
            return (
                f"{where} at memory.max={show_size(leaf.memory_max)} while running this job; raise its "
                f"queue.yml entry's memory_max or make the job use less memory"
            )
        if death.pool_limit_hit and self.pool_max is not None:
            return (
                f"{where} when the workers pool reached its memory.max={show_size(self.pool_max)} "
                f"(QUEBEC_WORKERS_POOL_MEMORY_MAX) while running this job; the pool kills its largest worker, so "
                f"this job may be a bystander: raise the pool limit or run fewer workers, then retry it"
            )
        return (
            f"{where} while running this job, with no Quebec limit reached: the machine or an outer cgroup ran "
            f"out of memory"
        )


def oom_verdict(tree: CgroupTree, leaf: Leaf, board: RunningBoard | None, pid: int, code: int) -> Verdict | None:
    """How a reaped child died, told by its leaf: a Verdict when it was an OOM kill, else None.

    An OOM victim dies of SIGKILL with `oom_kill` counted in its own leaf, whose counters
    started at zero when it was forked. Call it before `tree.remove(leaf)`."""
    death = tree.death(leaf)
    if code != -signal.SIGKILL or death.oom_kills == 0:
        return None
    running = board.running() if board is not None else frozenset()
    error = ErrorInfo(OOM_ERROR, tree.oom_message(leaf, death, pid))
    return Verdict(running, error, board is not None and not board.overflowed)


def _kernel(size: Size | None) -> str:
    return UNLIMITED if size is None else str(size)


def _try_rmdir(path: str, rmdir: Callable[[str], None] = os.rmdir) -> bool:
    try:
        rmdir(path)
        return True
    except FileNotFoundError:
        return True
    except OSError:
        return False


def _cgroup2_mounts(text: str) -> list[str]:
    return [f[1] for f in (line.split() for line in text.splitlines()) if len(f) >= 3 and f[2] == "cgroup2"]


def _own_path(text: str) -> str | None:
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3 and parts[0] == "0" and parts[1] == "":
            return parts[2] or "/"
    return None


def _keyed(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[1].isdigit():
            out[fields[0]] = int(fields[1])
    return out


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as file:
            return file.read()
    except OSError:
        return None


def _write(path: str, value: str) -> None:
    """One unbuffered write, as cgroupfs wants it (O_CREAT lets a plain directory stand in, in tests)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)
