"""Immutable settings: what load_settings resolves and the runtime reads.

Each dataclass validates and normalises its fields on construction with the rules in
`quebec.config.rules`, so a Settings built by hand is as sound as one from load_settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from quebec import identifiers
from quebec.config.rules import (
    DAY,
    HOUR,
    YEAR,
    QueueLimits,
    Rule,
    boolean,
    channel_name,
    components,
    confirmations,
    duration,
    forced_queue,
    integer,
    optional,
    queue_limits,
    queues,
    redact,
    sslmode,
    table_prefix,
    text,
)
from quebec.config.sizes import Size, optional_size, optional_swap_size
from quebec.errors import ConfigError

DEFAULT_ENV = "development"


def _tuple_of(kind: type[Any]) -> Rule:
    def rule(value: object, label: str) -> tuple[Any, ...]:
        if isinstance(value, list | tuple) and all(isinstance(item, kind) for item in value):
            return tuple(value)
        raise ConfigError(f"{label} must be a tuple of {kind.__name__}, got {value!r}")

    return rule


def _normalise(obj: object, rules: Mapping[str, Rule], owner: str) -> None:
    for name, rule in rules.items():
        object.__setattr__(obj, name, rule(getattr(obj, name), f"{owner}.{name}"))


# Bounds shared by the settings and the queue.yml entries that set the same thing. A poll
# faster than 1 ms is a busy loop; batches bind their ids in one statement, and SQLite takes
# at most 32,766 bound values.
THREADS = integer(1, 1000)
PROCESSES = integer(1, 256)
BATCH = integer(1, 10_000)
POLL = duration(positive=True, at_least=0.001, at_most=DAY)
WORKER_RULES: dict[str, Rule] = {
    "queues": queues,
    "threads": THREADS,
    "polling_interval": POLL,
    "processes": PROCESSES,
    "memory_max": optional_size,
    "memory_high": optional_size,
    "memory_swap_max": optional_swap_size,
    "memory_oom_group": optional(boolean),
    "memory_recycle_at": optional_size,
}
DISPATCHER_RULES: dict[str, Rule] = {
    "polling_interval": POLL,
    "batch_size": BATCH,
    "concurrency_maintenance": boolean,
    "concurrency_maintenance_interval": POLL,
    "batch_maintenance": boolean,
    "processes": PROCESSES,
    "memory_max": optional_size,
    "memory_high": optional_size,
    "memory_swap_max": optional_swap_size,
    "memory_oom_group": optional(boolean),
}


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """One `workers:` entry of queue.yml: threads taking jobs from queues, in `processes` copies."""

    queues: tuple[str, ...] = ("*",)
    threads: int = 3
    polling_interval: float = 0.05  # ours; the wheel polls every 0.1 s
    processes: int = 1
    # cgroup v2 memory.max, memory.high, memory.swap.max, memory.oom.group of each of this
    # entry's worker processes (fork supervisor only; engine/cgroup_limits.py).
    memory_max: Size | None = None
    memory_high: Size | None = None
    memory_swap_max: Size | None = None
    memory_oom_group: bool | None = None
    # Recycle a process of this entry past this much memory, instead of QUEBEC_WORKER_MAX_RSS_MB
    # (engine/memory.py; "max": never).
    memory_recycle_at: Size | None = None

    def __post_init__(self) -> None:
        _normalise(self, WORKER_RULES, "WorkerConfig")


@dataclass(frozen=True, slots=True)
class DispatcherConfig:
    """One `dispatchers:` entry of queue.yml."""

    polling_interval: float = 1.0
    batch_size: int = 500
    concurrency_maintenance: bool = True
    concurrency_maintenance_interval: float = 600.0
    batch_maintenance: bool = True  # sweep stalled batches on the concurrency-maintenance timer
    processes: int = 1
    # cgroup v2 memory.max, memory.high, memory.swap.max, memory.oom.group of each copy (fork supervisor only).
    memory_max: Size | None = None
    memory_high: Size | None = None
    memory_swap_max: Size | None = None
    memory_oom_group: bool | None = None

    def __post_init__(self) -> None:
        _normalise(self, DISPATCHER_RULES, "DispatcherConfig")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything configurable, resolved and validated; build it with `load_settings`.

    `worker_*` and `dispatcher_*` drive the in-process worker and dispatcher; `workers` and
    `dispatchers` are the fork supervisor's plan. load_settings keeps `workers[0]` and
    `dispatchers[0]` equal to the resolved `worker_*` / `dispatcher_*` values.
    """

    database_url: str | None = None
    table_name_prefix: str = identifiers.DEFAULT_PREFIX
    worker_threads: int = 3
    worker_polling_interval: float = 0.05  # ours; the wheel polls every 0.1 s
    worker_queues: tuple[str, ...] = ("*",)
    dispatcher_polling_interval: float = 1.0
    dispatcher_batch_size: int = 500
    dispatcher_concurrency_maintenance_interval: float = 600.0
    dispatcher_batch_maintenance: bool = True
    default_concurrency_control_period: float = 60.0
    use_skip_locked: bool = True
    use_listen_notify: bool = True
    notify_throttle_interval: float = 1.0
    # Rust uses 60 s / 300 s; a crashed worker's jobs would sit claimed for five minutes.
    process_heartbeat_interval: float = 5.0
    process_alive_threshold: float = 30.0
    shutdown_timeout: float = 5.0
    quiet_then_exit: bool = False
    silence_polling: bool = True
    preserve_finished_jobs: bool = True
    clear_finished_jobs_after: float = 14 * 86400.0
    cleanup_batch_size: int = 500
    cleanup_interval: float = 0.0
    control_plane_sse_interval: float = 5.0
    worker_max_rss_mb: int = 0
    worker_memory_check_interval: float = 5.0
    worker_memory_recycle_confirmations: int = 3
    worker_memory_graceful_timeout: float = 300.0
    # cgroup v2 limits under the fork supervisor (engine/cgroups.py): on, off, or auto (when usable).
    cgroup: str = "auto"
    cgroup_root: str | None = None
    workers_pool_memory_max: Size | None = None
    experimental_queue_concurrency: Mapping[str, int] = field(default_factory=QueueLimits)
    force_override_queue: str | None = None
    name: str = "quebec"
    env: str = DEFAULT_ENV
    sslmode: str | None = None
    sslrootcert: str | None = None
    sslcert: str | None = None
    sslkey: str | None = None
    db_max_connections: int | None = None
    db_connect_timeout: float | None = None
    workers: tuple[WorkerConfig, ...] = (WorkerConfig(),)
    dispatchers: tuple[DispatcherConfig, ...] = (DispatcherConfig(),)
    config_path: str | None = None
    # Recurring tasks (docs/recurring.md): the schedule file, and the wheel's opt-in pause column.
    recurring_schedule: str | None = None
    recurring_pause: bool = False
    # Fernet keys, comma-separated: the first encrypts, all decrypt (rotation). Arguments
    # and results of classes with `encrypt = True`, or of every job with encrypt_all_jobs.
    encryption_key: str | None = None
    encrypt_all_jobs: bool = False

    def __post_init__(self) -> None:
        _normalise(self, SETTINGS_RULES, "Settings")
        _check_combinations(self)

    def __repr__(self) -> str:
        # Settings end up in logs and tracebacks; the database password must not.
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        if self.database_url is not None:
            shown["database_url"] = redact(self.database_url)
        if self.encryption_key is not None:
            shown["encryption_key"] = "***"
        return f"Settings({', '.join(f'{name}={value!r}' for name, value in shown.items())})"


CGROUP_MODES = ("auto", "on", "off")
_CGROUP_WORDS = {"1": "on", "true": "on", "yes": "on", "0": "off", "false": "off", "no": "off"}


def cgroup_mode(value: object, label: str) -> str:
    """QUEBEC_CGROUP: on (limits required), off (never), auto (used when a delegated subtree is usable)."""
    word = str(value).strip().lower() if isinstance(value, str | int) and not isinstance(value, bool) else None
    if isinstance(value, bool):
        word = "on" if value else "off"
    word = _CGROUP_WORDS.get(word or "", word)
    if word in CGROUP_MODES:
        return word
    raise ConfigError(f"{label} must be on, off or auto (cgroup v2 memory limits), got {value!r}")


SSL_OPTIONS = ("sslmode", "sslrootcert", "sslcert", "sslkey")

SETTINGS_RULES: dict[str, Rule] = {
    "database_url": optional(text),
    "table_name_prefix": table_prefix,
    "worker_threads": THREADS,
    "worker_polling_interval": POLL,
    "worker_queues": queues,
    "dispatcher_polling_interval": POLL,
    "dispatcher_batch_size": BATCH,
    "dispatcher_concurrency_maintenance_interval": POLL,
    "dispatcher_batch_maintenance": boolean,
    "default_concurrency_control_period": duration(positive=True, at_most=YEAR),
    "use_skip_locked": boolean,
    "use_listen_notify": boolean,
    "notify_throttle_interval": duration(positive=False, at_most=HOUR),
    "process_heartbeat_interval": duration(positive=True, at_least=0.01, at_most=HOUR),
    "process_alive_threshold": duration(positive=True, at_most=DAY),
    "shutdown_timeout": duration(positive=False, at_most=DAY),
    "quiet_then_exit": boolean,
    "silence_polling": boolean,
    "preserve_finished_jobs": boolean,
    "clear_finished_jobs_after": duration(positive=False),
    "cleanup_batch_size": BATCH,
    "cleanup_interval": duration(positive=False, at_most=YEAR),
    "control_plane_sse_interval": duration(positive=True, at_least=0.01, at_most=HOUR),
    "worker_max_rss_mb": integer(0, 1 << 20),  # up to 1 TB
    "worker_memory_check_interval": duration(positive=True, at_least=0.01, at_most=DAY),
    "worker_memory_recycle_confirmations": confirmations,
    "worker_memory_graceful_timeout": duration(positive=False, at_most=DAY),
    "cgroup": cgroup_mode,
    "cgroup_root": optional(text),
    "workers_pool_memory_max": optional_size,
    "experimental_queue_concurrency": queue_limits,
    "force_override_queue": forced_queue,
    "name": channel_name,
    "env": text,
    "sslmode": optional(sslmode),
    "sslrootcert": optional(text),
    "sslcert": optional(text),
    "sslkey": optional(text),
    "db_max_connections": optional(integer(1, 1000)),
    "db_connect_timeout": optional(duration(positive=True, at_least=0.01, at_most=HOUR)),
    "workers": _tuple_of(WorkerConfig),
    "dispatchers": _tuple_of(DispatcherConfig),
    "config_path": optional(text),
    "recurring_schedule": optional(text),
    "recurring_pause": boolean,
    "encryption_key": optional(text),
    "encrypt_all_jobs": boolean,
}


def run_options(spawn: object, threads: object) -> tuple[tuple[str, ...] | None, int | None]:
    """`qc.run()` / `qc.start()`'s spawn= and threads=, checked like settings (None: not given)."""
    return (
        None if spawn is None else components(spawn, "spawn="),
        None if threads is None else THREADS(threads, "threads="),
    )


def _check_combinations(settings: Settings) -> None:
    # ssl options against a non-PostgreSQL URL are refused by the dialect (Database), which
    # alone knows which URL is which.
    if settings.encrypt_all_jobs and not settings.encryption_key:
        raise ConfigError(
            "encrypt_all_jobs is on but no encryption_key is set; set QUEBEC_ENCRYPTION_KEY to a Fernet key "
            "(python -m quebec keys generate prints one) or turn encrypt_all_jobs off"
        )
    if settings.process_alive_threshold <= settings.process_heartbeat_interval:
        raise ConfigError(
            f"process_alive_threshold ({settings.process_alive_threshold:g}s) must be longer than "
            f"process_heartbeat_interval ({settings.process_heartbeat_interval:g}s), or live processes "
            f"are pruned as dead; raise the threshold or shorten the heartbeat"
        )
