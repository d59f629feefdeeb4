"""The cgroup v2 memory limits queue.yml asks for, per worker or dispatcher entry, and how a
child's leaf gets them (engine/cgroups.py lays the tree out).

Each entry may set, for every process it runs (as the Rust Quebec 0.4.2 reads them):

- `memory_max` → memory.max: the hard limit; past it the OOM killer ends the process.
- `memory_high` → memory.high: the throttle line; past it the kernel reclaims hard and slows
  the process down instead of killing it.
- `memory_swap_max` → memory.swap.max: how much it may swap (0: none). Unset with a numeric
  memory_max it is 0, or memory.max would only push the process into swap.
- `memory_oom_group` → memory.oom.group: true, an OOM kill takes the whole process, not one
  thread's victim. Unset with a numeric memory_max it is true.

A numeric value (or an explicit memory_oom_group) is a promise: it is listed by
configured_limits, which makes a usable cgroup subtree required. `max` asks for nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from quebec.config import Settings
from quebec.config.settings import DispatcherConfig, WorkerConfig
from quebec.config.sizes import UNLIMITED, Size, show_size
from quebec.errors import ConfigError


@dataclass(frozen=True)
class LeafLimits:
    """What one child's leaf gets written; None: left at the kernel's default."""

    memory_max: Size | None = None
    memory_high: Size | None = None
    memory_swap_max: Size | None = None
    memory_oom_group: bool | None = None

    @classmethod
    def of(cls, entry: WorkerConfig | DispatcherConfig) -> LeafLimits:
        return cls(entry.memory_max, entry.memory_high, entry.memory_swap_max, entry.memory_oom_group)

    @property
    def capped(self) -> bool:
        """A numeric memory.max: it brings swap 0 and oom.group 1 along unless they are set."""
        return _numeric(self.memory_max)


NONE = LeafLimits()


def configured_limits(settings: Settings) -> list[str]:
    """The cgroup limits settings ask for, each as `where=value` (empty: nothing configured)."""
    found: list[str] = []
    for where, entry in _entries(settings):
        limits = LeafLimits.of(entry)
        for name in ("memory_max", "memory_high", "memory_swap_max"):
            size = getattr(limits, name)
            if _numeric(size):
                found.append(f"{where}.{name}={show_size(size)}")
        if limits.memory_oom_group is not None:
            found.append(f"{where}.memory_oom_group={str(limits.memory_oom_group).lower()}")
    pool = settings.workers_pool_memory_max
    if pool is not None and pool != UNLIMITED:
        found.append(f"workers_pool_memory_max={show_size(pool)}")
    return found


def require_swap_accounting(settings: Settings, inner: str) -> None:
    """ConfigError (its sentence naming the setting) when an entry sets a numeric memory_swap_max
    but the kernel keeps no swap accounts: `inner`, a cgroup below the root, then has no
    memory.swap.max. Checked once at start-up, so that no child is forked unable to get it."""
    for where, entry in _entries(settings):
        size = entry.memory_swap_max
        if size is not None and size != UNLIMITED and not os.path.exists(os.path.join(inner, "memory.swap.max")):
            raise ConfigError(
                f"{where}.memory_swap_max={show_size(size)} needs memory.swap.max, which {inner} does not have "
                f"(the kernel keeps no swap accounts); remove memory_swap_max or boot with swap accounting"
            )


def files(limits: LeafLimits, path: str) -> list[tuple[str, str]]:
    """(file, value) to write into a fresh leaf at `path`, in order; memory.max last, so the
    companions are in place before the hard limit can bite. OSError when one the settings ask
    for explicitly cannot exist there (memory.swap.max without swap accounting)."""
    out: list[tuple[str, str]] = []
    if limits.memory_high is not None and limits.memory_high != UNLIMITED:
        out.append(("memory.high", str(limits.memory_high)))
    swap = os.path.join(path, "memory.swap.max")
    if limits.memory_swap_max is not None:
        if limits.memory_swap_max != UNLIMITED:
            if not os.path.exists(swap):
                raise OSError(
                    f"memory_swap_max={show_size(limits.memory_swap_max)} needs {swap}, which this kernel does not "
                    f"have (no swap accounting); remove memory_swap_max or boot with swap accounting"
                )
            out.append(("memory.swap.max", str(limits.memory_swap_max)))
    elif limits.capped and os.path.exists(swap):  # without it, memory.max only pushes the process into swap
        out.append(("memory.swap.max", "0"))
    if limits.memory_oom_group is not None:
        out.append(("memory.oom.group", "1" if limits.memory_oom_group else "0"))
    elif limits.capped:
        out.append(("memory.oom.group", "1"))  # the whole child dies, not one thread's victim
    if limits.capped:
        out.append(("memory.max", str(limits.memory_max)))
    return out


def _entries(settings: Settings) -> list[tuple[str, WorkerConfig | DispatcherConfig]]:
    entries: list[tuple[str, WorkerConfig | DispatcherConfig]] = [
        (f"workers[{i}]", w) for i, w in enumerate(settings.workers)
    ]
    return entries + [(f"dispatchers[{i}]", d) for i, d in enumerate(settings.dispatchers)]


def _numeric(size: Size | None) -> bool:
    return size is not None and size != UNLIMITED
