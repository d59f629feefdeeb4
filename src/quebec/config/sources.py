"""Where settings come from: keyword arguments, QUEBEC_* variables, queue.yml, defaults.

The first source that has a value wins, in that order. A bad value is an error naming
its source; nothing falls back silently (the Rust original warns and uses the default,
which turns a typo in production into a mystery).
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, TypeVar

import yaml

from quebec.config.rules import Rule, text
from quebec.config.settings import (
    DEFAULT_ENV,
    DISPATCHER_RULES,
    SETTINGS_RULES,
    WORKER_RULES,
    DispatcherConfig,
    Settings,
    WorkerConfig,
)
from quebec.errors import ConfigError

log = logging.getLogger("quebec.config")
T = TypeVar("T")
Entry = TypeVar("Entry", WorkerConfig, DispatcherConfig)
Found = tuple[object, str]  # a raw value and the label of the place it came from

QUEUE_FILES = ("queue.yml", "config/queue.yml")
OPTIONS = tuple(f.name for f in fields(Settings) if f.name not in ("workers", "dispatchers"))
# Options whose keyword argument or variable is not simply the field name / QUEBEC_<NAME>.
_KWARGS = {"worker_queues": "queues"}
_ENV_VARS = {
    "worker_queues": ("QUEBEC_QUEUES",),
    "database_url": ("QUEBEC_DATABASE_URL", "DATABASE_URL"),
    "config_path": ("QUEBEC_CONFIG",),
    # Solid Queue's name first, as the wheel reads them.
    "recurring_schedule": ("SOLID_QUEUE_RECURRING_SCHEDULE", "QUEBEC_RECURRING_SCHEDULE"),
}
# Options queue.yml sets through the first worker / dispatcher entry rather than a top-level key.
_FROM_WORKER = {
    "worker_threads": "threads",
    "worker_polling_interval": "polling_interval",
    "worker_queues": "queues",
}
_FROM_DISPATCHER = {
    "dispatcher_polling_interval": "polling_interval",
    "dispatcher_batch_size": "batch_size",
    "dispatcher_concurrency_maintenance_interval": "concurrency_maintenance_interval",
    "dispatcher_batch_maintenance": "batch_maintenance",
}
# env and config_path choose the file, so the file cannot set them; database.url spells database_url.
_FILE_OPTIONS = frozenset(OPTIONS) - {"env", "config_path", "database_url"} - set(_FROM_WORKER) - set(_FROM_DISPATCHER)
_SECTION_KEYS = frozenset({"workers", "dispatchers", "database"}) | _FILE_OPTIONS
KWARGS = frozenset(_KWARGS.get(option, option) for option in OPTIONS)
SETTING_VARIABLES = frozenset(v for option in OPTIONS for v in _ENV_VARS.get(option, (f"QUEBEC_{option.upper()}",)))
# QUEBEC_* variables read elsewhere: by the CLI (`python -m quebec`) and the logger.
CLI_VARIABLES = frozenset(
    {
        "QUEBEC_CREATE_TABLES",
        "QUEBEC_CONTROL_PLANE",
        # the dashboard's credentials and switches (dashboard/security.py)
        "QUEBEC_CONTROL_PLANE_USER",
        "QUEBEC_CONTROL_PLANE_PASSWORD",
        "QUEBEC_CONTROL_PLANE_VIEWER_USER",
        "QUEBEC_CONTROL_PLANE_VIEWER_PASSWORD",
        "QUEBEC_CONTROL_PLANE_TOKEN",
        "QUEBEC_CONTROL_PLANE_SECRET",
        "QUEBEC_CONTROL_PLANE_READ_ONLY",
        "QUEBEC_SPAWN",
        "QUEBEC_LOG_LEVEL",
        "QUEBEC_LOG_FORMAT",
        "QUEBEC_DISCOVER_ON_ERROR",
        "QUEBEC_SUPERVISOR",
        # the job metrics recorder (engine/metrics.py)
        "QUEBEC_JOB_METRICS_DIR",
        "QUEBEC_JOB_METRICS_MAX_ROWS",
        "QUEBEC_JOB_METRICS_MAX_SECONDS",
    }
)
# Read by the Rust wheel 0.4.2, not (yet) by this version: named as such, not as typos.
WHEEL_ONLY_VARIABLES = frozenset(
    {
        "QUEBEC_DB_ACQUIRE_TIMEOUT",
        "QUEBEC_DB_IDLE_TIMEOUT",
        "QUEBEC_DB_MAX_LIFETIME",
        "QUEBEC_DB_MIN_CONNECTIONS",
        "QUEBEC_TEMPLATE_DIR",
        "QUEBEC_COLOR",
    }
)
KNOWN_VARIABLES = SETTING_VARIABLES | CLI_VARIABLES | {"QUEBEC_ENV", "QUEBEC_CONFIG"}
# Quebec's own test suite (tests/conftest.py, the interop tests) reads these; they are no settings.
_TEST_SUITE = ("QUEBEC_TEST_", "QUEBEC_RS_PYTHON")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True, slots=True)
class QueueFile:
    """What queue.yml contributes: top-level options plus the worker and dispatcher plans."""

    path: str | None = None
    options: Mapping[str, Found] = field(default_factory=dict)
    workers: tuple[WorkerConfig, ...] | None = None  # None: the file has no workers: key
    dispatchers: tuple[DispatcherConfig, ...] | None = None


def load_settings(
    kwargs: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    *,
    cwd: str | None = None,
) -> Settings:
    """Resolve every option: keyword argument > QUEBEC_* variable > queue.yml > default.

    `None` keyword arguments count as not given. An empty environment variable counts as
    unset, so `QUEBEC_FOO=` in a compose file behaves like leaving it out.
    """
    given = dict(kwargs or {})
    for key in given:
        if key not in KWARGS:
            raise _unknown(f"unknown keyword argument {key!r}", key, KWARGS)
    given = {key: value for key, value in given.items() if value is not None}
    environ: Mapping[str, str] = os.environ if env is None else env
    warn_unknown_variables(environ)

    env_found = _given("env", given, environ)
    env_name = text(*env_found) if env_found else DEFAULT_ENV
    env_source = env_found[1] if env_found else "the default environment"
    queue_file = read_queue_file(
        _given("config_path", given, environ), cwd or os.getcwd(), env_name, env_source, environ
    )

    values: dict[str, Any] = {"env": env_name, "config_path": queue_file.path}
    for option in OPTIONS:
        found = _given(option, given, environ) or queue_file.options.get(option)
        if found is not None and option not in ("env", "config_path"):
            values[option] = SETTINGS_RULES[option](*found)
    settings = Settings(**values)
    return replace(
        settings,
        workers=_first_follows(queue_file.workers, WorkerConfig(), _worker_overrides(settings)),
        dispatchers=_first_follows(queue_file.dispatchers, DispatcherConfig(), _dispatcher_overrides(settings)),
    )


class _Warned:
    """The unknown variables already warned about: each is named once per process, not at
    every Quebec() (tests build hundreds)."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self._lock = threading.Lock()

    def first_time(self, name: str) -> bool:
        with self._lock:
            new = name not in self.names
            self.names.add(name)
            return new


_WARNED = _Warned()


def warn_unknown_variables(environ: Mapping[str, str]) -> None:
    """A WARNING for each QUEBEC_* variable nothing reads, naming the closest known one: a
    typo (QUEBEC_WORKR_THREADS) would otherwise be silently ignored."""
    for name in sorted(environ):
        if not name.startswith("QUEBEC_") or name in KNOWN_VARIABLES or name.startswith(_TEST_SUITE):
            continue
        if not _WARNED.first_time(name):
            continue
        if name in WHEEL_ONLY_VARIABLES:
            log.warning("environment variable %s is read by the Rust Quebec but has no effect in this version", name)
            continue
        close = difflib.get_close_matches(name, sorted(KNOWN_VARIABLES), n=1, cutoff=0.75)
        hint = f"did you mean {close[0]}?" if close else "docs/configuration.md lists the variables Quebec reads"
        log.warning("environment variable %s is not a Quebec setting and is ignored; %s", name, hint)


def _given(option: str, kwargs: Mapping[str, Any], environ: Mapping[str, str]) -> Found | None:
    keyword = _KWARGS.get(option, option)
    if keyword in kwargs:
        return kwargs[keyword], f"keyword argument {keyword}"
    for variable in _ENV_VARS.get(option, (f"QUEBEC_{option.upper()}",)):
        raw = environ.get(variable, "")
        if raw.strip():
            return raw, f"environment variable {variable}"
    return None


def _worker_overrides(settings: Settings) -> dict[str, Any]:
    return {entry_key: getattr(settings, option) for option, entry_key in _FROM_WORKER.items()}


def _dispatcher_overrides(settings: Settings) -> dict[str, Any]:
    return {entry_key: getattr(settings, option) for option, entry_key in _FROM_DISPATCHER.items()}


def _first_follows(entries: tuple[Entry, ...] | None, default: Entry, overrides: dict[str, Any]) -> tuple[Entry, ...]:
    # The in-process worker and the supervisor's first worker are the same worker: a
    # QUEBEC_WORKER_THREADS override must not leave the fork plan saying otherwise.
    chosen = (default,) if entries is None else entries
    return tuple(replace(entry, **overrides) if i == 0 else entry for i, entry in enumerate(chosen))


def _first_entry_options(entries: tuple[Entry, ...] | None, mapping: Mapping[str, str], label: str) -> dict[str, Found]:
    if not entries:
        return {}
    first = entries[0]
    return {option: (getattr(first, key), f"{label}[0].{key}") for option, key in mapping.items()}


def read_queue_file(
    config: Found | None, cwd: str, env_name: str, env_source: str, environ: Mapping[str, str]
) -> QueueFile:
    """The queue.yml section for `env_name`, or an empty QueueFile when there is no file."""
    located = _locate(config, cwd)
    if located is None:
        return QueueFile()
    display, path = located
    section, prefix = _select_section(_parse(display, path, environ), display, env_name, env_source)
    options: dict[str, Found] = {}
    workers: tuple[WorkerConfig, ...] | None = None
    dispatchers: tuple[DispatcherConfig, ...] | None = None
    for key, value in section.items():
        label = f"{prefix}{key}"
        if key == "workers":
            workers = _entries(value, label, WorkerConfig, WORKER_RULES)
        elif key == "dispatchers":
            dispatchers = _entries(value, label, DispatcherConfig, DISPATCHER_RULES)
        elif key == "database":
            options["database_url"] = _database_url(value, label)
        elif key in _FILE_OPTIONS:
            options[key] = (value, label)
        elif key == "recurring":
            raise ConfigError(
                f"{label}: recurring tasks are read from recurring.yml (or config/recurring.yml, or the file "
                f"$QUEBEC_RECURRING_SCHEDULE names), not from {display}; move the tasks there (docs/recurring.md)"
            )
        else:
            raise _unknown(f"{label} is not a known setting", str(key), _SECTION_KEYS)
    options.update(_first_entry_options(workers, _FROM_WORKER, f"{prefix}workers"))
    options.update(_first_entry_options(dispatchers, _FROM_DISPATCHER, f"{prefix}dispatchers"))
    return QueueFile(path=path, options=options, workers=workers, dispatchers=dispatchers)


def _locate(config: Found | None, cwd: str) -> tuple[str, str] | None:
    """(name for messages, path to open) of the queue.yml to read, if any."""
    if config is not None:
        value, label = config
        name = text(value, label)
        path = os.path.join(cwd, os.path.expanduser(name))
        if not os.path.isfile(path):
            raise ConfigError(
                f"{label} names {name!r}, which is not a file (looked from {cwd}); "
                f"fix the path or unset it to use queue.yml or config/queue.yml"
            )
        return name, os.path.abspath(path)
    for name in QUEUE_FILES:
        path = os.path.join(cwd, name)
        if os.path.isfile(path):
            return name, os.path.abspath(path)
    return None


def _parse(display: str, path: str, environ: Mapping[str, str]) -> object:
    try:
        with open(path, encoding="utf-8") as file:
            source = file.read()
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise ConfigError(f"{display} cannot be read ({reason}); check its permissions and encoding") from None
    try:
        return yaml.safe_load(expand_variables(source, environ))
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = err.problem or err.context or "syntax error"
        raise ConfigError(
            f"{display}{where} is not valid YAML ({problem}); check the indentation and quoting there"
        ) from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{display} is not valid YAML ({err}); check its syntax") from None


def expand_variables(source: str, environ: Mapping[str, str]) -> str:
    """$VAR and ${VAR} replaced from the environment; unset ones are left as written.

    Leaving them is what the Rust original does, and it keeps a '$' in a password intact;
    an unset variable in a typed setting still fails validation, naming the '$VAR' text.
    """
    return _VARIABLE.sub(lambda m: environ.get(m[1] or m[2], m[0]), source)


def _select_section(document: object, display: str, env_name: str, env_source: str) -> tuple[dict[Any, Any], str]:
    """The mapping of settings to read, and the label prefix for its keys."""
    if document is None:
        return {}, f"{display} "
    if not isinstance(document, dict):
        raise ConfigError(
            f"{display} must be a mapping of settings or of environments (development:, production:, ...), "
            f"got {type(document).__name__} {document!r}"
        )
    if _is_flat(document, env_name):
        return document, f"{display} "
    if env_name not in document:
        found = ", ".join(sorted(str(key) for key in document))
        raise ConfigError(
            f"{display} has no {env_name!r} section, which {env_source} selects (sections found: {found}); "
            f"add a {env_name}: section or set QUEBEC_ENV to one of those"
        )
    section = document[env_name]
    if section is None:
        return {}, f"{display} {env_name}."
    if not isinstance(section, dict):
        raise ConfigError(f"{display} {env_name} must be a mapping of settings, got {section!r}")
    return section, f"{display} {env_name}."


def _is_flat(document: dict[Any, Any], env_name: str) -> bool:
    # Environment sections are mappings with names that are not settings; anything else at
    # the top level means the settings themselves are there. The selected environment's own
    # value is left out so that a misshapen section is reported as such.
    return not document or any(
        key in _SECTION_KEYS or (key != env_name and not isinstance(value, dict | None))
        for key, value in document.items()
    )


def _entries(value: object, label: str, kind: Callable[..., T], rules: Mapping[str, Rule]) -> tuple[T, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise ConfigError(f"{label} must be a list of entries, each starting with '- ', got {value!r}")
    entries = []
    for index, entry in enumerate(value):
        where = f"{label}[{index}]"
        if entry is None:
            entry = {}
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be a mapping of {', '.join(rules)}, got {entry!r}")
        for key in entry:
            if key not in rules:
                raise _unknown(f"{where} has an unknown key {key!r}", str(key), rules, list_all=True)
        entries.append(kind(**{key: rules[key](item, f"{where}.{key}") for key, item in entry.items()}))
    return tuple(entries)


def _database_url(value: object, label: str) -> Found:
    if not isinstance(value, dict):
        raise ConfigError(f"{label} must be a mapping with a url key, got {value!r}")
    for key in value:
        if key != "url":
            raise ConfigError(f"{label} has an unknown key {key!r}; the only key allowed is 'url'")
    return value.get("url"), f"{label}.url"


def _unknown(subject: str, key: str, known: Iterable[str], *, list_all: bool = False) -> ConfigError:
    choices = sorted(known)
    close = difflib.get_close_matches(key, choices, n=3)
    guess = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    if close and not list_all:
        return ConfigError(f"{subject}; {guess}")
    allowed = f"the allowed ones are {', '.join(choices)}"
    return ConfigError(f"{subject}; {allowed} ({guess})" if close else f"{subject}; {allowed}")
