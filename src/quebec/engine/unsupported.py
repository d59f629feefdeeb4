"""Options that are accepted but not enforced yet: one warning sentence each, at start-up;
and limits that cannot be applied here, refused.

Nothing accepted may silently do nothing. Until the feature behind an option is built,
the runtime says so once, naming the option and its value; this is the one list of them.
Remove an entry when its feature lands.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import fields
from typing import Any

from quebec.config import Settings
from quebec.engine.cgroup_limits import configured_limits
from quebec.engine.cgroups import CgroupUnusable, usable_root
from quebec.engine.memory import recycle_limit_mb
from quebec.errors import ConfigError

# The memory-recycle companions do nothing without QUEBEC_WORKER_MAX_RSS_MB or a
# workers[].memory_recycle_at (engine/memory.py).
_MEMORY_COMPANIONS = (
    "worker_memory_check_interval",
    "worker_memory_recycle_confirmations",
    "worker_memory_graceful_timeout",
)
# Settings read from every source and checked, but nothing in this version acts on them yet.
_UNREAD = {
    "cleanup_interval": "finished jobs are not cleared periodically; call qc.clear_finished_jobs() yourself",
    "notify_throttle_interval": "every enqueue sends its NOTIFY, unthrottled",
    "control_plane_sse_interval": "the dashboard polls every 5 s (htmx), it sends no server-sent events",
}
_NO_FORK = (
    "only the fork supervisor (QUEBEC_SUPERVISOR=1 with qc.run() or python -m quebec) runs several processes, "
    "so this process runs that entry once, as threads"
)


def refuse_unappliable(settings: Settings, *, forking: bool) -> None:
    """Raise ConfigError for a cgroup limit (engine/cgroups.py) that cannot be applied here:
    a limit the operator counts on must never be dropped silently. Nothing configured and
    QUEBEC_CGROUP=auto: nothing to refuse (the supervisor uses cgroups if it can)."""
    limits = configured_limits(settings)
    if limits and settings.cgroup == "off":
        raise ConfigError(
            f"{limits[0]} asks for a cgroup v2 memory limit but QUEBEC_CGROUP=off turns cgroups off; "
            f"remove the limit or set QUEBEC_CGROUP=auto"
        )
    wanted = limits[0] if limits else ("QUEBEC_CGROUP=on" if settings.cgroup == "on" else None)
    if wanted is None:
        return
    if not forking:
        raise ConfigError(
            f"{wanted} applies to the fork supervisor's child processes, and this process runs without it; "
            f"set QUEBEC_SUPERVISOR=1 and start with qc.run() or python -m quebec, or remove it"
        )
    try:
        usable_root(settings)
    except CgroupUnusable as err:
        raise ConfigError(f"{wanted} cannot be applied: {err}") from None


def fork_mode(environ: Mapping[str, str]) -> bool:
    """QUEBEC_SUPERVISOR set to a true value: run() forks the queue.yml plan (engine/forking.py)."""
    value = environ.get("QUEBEC_SUPERVISOR", "").strip().lower()
    return bool(value) and value not in ("0", "false", "no", "off")


def unsupported_options(
    settings: Settings,
    *,
    spawn: Collection[str] | None,
    environ: Mapping[str, str],
) -> list[str]:
    """One sentence per option that is set (to a non-default value) but has no effect yet."""
    found: list[str] = []
    defaults = {f.name: f.default for f in fields(Settings)}
    for name in _MEMORY_COMPANIONS if not recycle_limit_mb(settings) else ():
        value = getattr(settings, name)
        if value != defaults[name]:
            found.append(
                f"{name}={value!r} (QUEBEC_{name.upper()}) has no effect: workers are recycled on memory "
                f"use only with QUEBEC_WORKER_MAX_RSS_MB or a queue.yml workers[].memory_recycle_at set; set one, "
                f"or unset this"
            )
    for name, why in _UNREAD.items():
        value = getattr(settings, name)
        if value != defaults[name]:
            found.append(f"{name}={value!r} (QUEBEC_{name.upper()}) has no effect yet: {why}; unset it")
    if not fork_mode(environ):  # under the fork supervisor the plan is the supervisor's to run
        found.extend(_plan_entries("workers", settings.workers))
        found.extend(_plan_entries("dispatchers", settings.dispatchers))
        # run()/start() refuse these (refuse_unappliable); a one-shot run says so instead
        found.extend(
            f"{limit} has no effect here: cgroup limits apply to the fork supervisor's children (QUEBEC_SUPERVISOR=1)"
            for limit in configured_limits(settings)
        )
    return found


def _plan_entries(section: str, entries: tuple[Any, ...]) -> list[str]:
    """queue.yml plan entries asking for `processes: > 1`, which only the fork supervisor runs."""
    return [
        f"queue.yml {section}[{index}].processes={entry.processes} has no effect here: {_NO_FORK}"
        for index, entry in enumerate(entries)
        if entry.processes > 1
    ]
