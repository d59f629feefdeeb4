"""Rules that turn a raw setting (kwarg, environment string, YAML value) into a typed value.

Each rule takes the value and a label saying where it came from
("environment variable QUEBEC_WORKER_THREADS", "queue.yml production.workers[0].threads"),
so a bad value is reported against the place the user has to edit. Rules are idempotent:
a value they produced passes through them unchanged.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from typing import Any

from quebec import identifiers
from quebec.errors import ConfigError, InvalidIdentifier

Rule = Callable[[object, str], Any]

_DURATION = re.compile(r"^(-?(?:\d+(?:\.\d*)?|\.\d+))\s*(ms|s|m|h|d)?$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_HINT = "a number of seconds, a timedelta, or a string such as '250ms', '5s', '2m', '1h' or '1d'"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_INTEGER = re.compile(r"^[+-]?\d+$")
SSL_MODES = ("disable", "prefer", "require", "verify-ca", "verify-full")


def parse_duration(value: object, *, name: str) -> float:
    """Seconds from a timedelta, an int or float, or a string like '5', '5s', '250ms', '2m', '1h', '1d'."""
    match = _DURATION.match(value.strip().lower()) if isinstance(value, str) else None
    try:
        if isinstance(value, timedelta):
            seconds = value.total_seconds()
        elif isinstance(value, int | float) and not isinstance(value, bool):
            seconds = float(value)
        elif match:
            seconds = float(match[1]) * _UNIT_SECONDS[match[2] or "s"]
        else:
            raise ConfigError(f"{name} must be {_DURATION_HINT}, got {value!r}")
    except OverflowError:
        seconds = math.inf
    if not math.isfinite(seconds):
        raise ConfigError(f"{name} must be a finite duration ({_DURATION_HINT}), got {value!r}")
    if seconds < 0:
        raise ConfigError(f"{name} must not be negative, got {value!r}; use 0 or a positive duration")
    return seconds


MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0
YEAR = 365 * DAY


def duration(*, positive: bool, at_most: float = 100 * YEAR, at_least: float = 0.0) -> Rule:
    """Seconds within [at_least, at_most] (and > 0 when positive). The ceiling keeps every
    duration a timedelta and a datetime can add (`now - 1e300 s` would overflow at run time),
    and says which values make no sense: a 10-year polling interval is a typo."""

    def rule(value: object, label: str) -> float:
        seconds = parse_duration(value, name=label)
        if positive and seconds == 0:
            raise ConfigError(f"{label} must be a duration > 0 seconds, got {value!r}")
        if seconds < at_least:
            raise ConfigError(f"{label} must be at least {_span(at_least)}, got {value!r}")
        if seconds > at_most:
            raise ConfigError(f"{label} must be at most {_span(at_most)}, got {value!r}")
        return seconds

    return rule


def _span(seconds: float) -> str:
    for unit, size in (("year", YEAR), ("day", DAY), ("hour", HOUR), ("minute", MINUTE)):
        if seconds >= size and seconds % size == 0:
            count = seconds / size
            return f"{count:g} {unit}{'' if count == 1 else 's'} ({seconds:g}s)"
    return f"{seconds:g}s"


def integer(minimum: int, maximum: int | None = None) -> Rule:
    def rule(value: object, label: str) -> int:
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and _INTEGER.match(value.strip()):
            number = int(value.strip())
        if maximum is not None and (number is None or not minimum <= number <= maximum):
            raise ConfigError(f"{label} must be an integer from {minimum} to {maximum:,}, got {value!r}")
        if number is None or number < minimum:
            raise ConfigError(f"{label} must be an integer ≥ {minimum}, got {value!r}")
        return number

    return rule


def boolean(value: object, label: str) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower() if isinstance(value, str | int) else None
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ConfigError(f"{label} must be a boolean (true/false, yes/no, on/off or 1/0), got {value!r}")


def text(value: object, label: str) -> str:
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise ConfigError(f"{label} must be a non-empty string, got {value!r}")


def optional(rule: Rule) -> Rule:
    def optional_rule(value: object, label: str) -> Any:
        return None if value is None else rule(value, label)

    return optional_rule


def _identifier(check: Callable[[Any], Any], value: object, label: str) -> Any:
    try:
        return check(value)
    except InvalidIdentifier as err:
        # identifiers' message names the value and the fix but not where the value came from.
        raise InvalidIdentifier(f"{label} is invalid: {err}") from None


def queues(value: object, label: str) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(item, str) for item in items):
        raise ConfigError(
            f"{label} must be '*', a queue name, a comma-separated string or a list of queue names, got {value!r}"
        )
    patterns = tuple(item.strip() for item in items if item.strip())
    if not patterns:
        raise ConfigError(f"{label} names no queue, got {value!r}; use '*' for every queue")
    return tuple(_identifier(identifiers.queue_pattern, p, label) for p in patterns)


def table_prefix(value: object, label: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{label} must be a string such as 'solid_queue', got {value!r}")
    prefix: str = _identifier(identifiers.table_prefix, value.strip(), label)
    return prefix


def forced_queue(value: object, label: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{label} must be a queue name (or '' to clear it), got {value!r}")
    forced: str | None = _identifier(identifiers.forced_queue, value, label)
    return forced


def sslmode(value: object, label: str) -> str:
    mode = text(value, label).lower()
    if mode == "allow":
        raise ConfigError(
            f"{label} 'allow' is not supported, because it silently falls back to an unencrypted "
            f"connection; use 'prefer' or 'require'"
        )
    if mode not in SSL_MODES:
        raise ConfigError(f"{label} must be one of {', '.join(SSL_MODES)}, got {value!r}")
    return mode


# What `spawn` may name (qc.run(spawn=…), QUEBEC_SPAWN).
COMPONENTS = ("worker", "dispatcher", "scheduler")


def components(value: object, label: str) -> tuple[str, ...]:
    """`spawn`: which components run. A list in code; a comma-separated string only from the
    environment (QUEBEC_SPAWN): a bare string in code is a forgotten list, refused rather than
    guessed at. An empty one would start a process that runs nothing and never says so."""
    from_env = label.startswith("environment variable")
    if isinstance(value, str) and not from_env:
        raise ConfigError(f"{label}{value!r} must be a list of component names, e.g. spawn=[{value!r}]")
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple | set | frozenset) or not all(isinstance(i, str) for i in items):
        raise ConfigError(f"{label} must be a list of component names such as ['worker', 'dispatcher'], got {value!r}")
    names = tuple(dict.fromkeys(item.strip() for item in items if item.strip()))
    if not names:
        raise ConfigError(
            f"{label} names no component, so nothing would run, got {value!r}; name at least one, "
            f"e.g. ['worker'], or leave it out to run them all"
        )
    unknown = [n for n in names if n not in COMPONENTS]
    if unknown:
        raise ConfigError(f"{label} names unknown components {unknown}; choose from {list(COMPONENTS)}")
    return names


def confirmations(value: object, label: str) -> int:
    # One sample is the least that can confirm anything; 0 is accepted as "no extra confirmation".
    count: int = integer(0, 1000)(value, label)
    return max(1, count)


_CHANNEL = re.compile(r"^[A-Za-z0-9_.:\-]{1,63}$")


def channel_name(value: object, label: str) -> str:
    """`name`: the NOTIFY channel, which PostgreSQL limits to 63 bytes."""
    name = text(value, label)
    if not _CHANNEL.match(name):
        raise ConfigError(
            f"{label} must be 1-63 letters, digits or '_' '-' '.' ':' (it names the NOTIFY channel), got {value!r}"
        )
    return name


class QueueLimits(Mapping[str, int]):
    """An immutable, hashable, picklable {queue: limit} for experimental_queue_concurrency."""

    __slots__ = ("_limits",)

    def __init__(self, limits: Mapping[str, int] | None = None) -> None:
        self._limits = dict(limits or {})

    def __getitem__(self, queue: str) -> int:
        return self._limits[queue]

    def __iter__(self) -> Iterator[str]:
        return iter(self._limits)

    def __len__(self) -> int:
        return len(self._limits)

    def __hash__(self) -> int:
        return hash(frozenset(self._limits.items()))

    def __repr__(self) -> str:
        return f"QueueLimits({self._limits!r})"


def queue_limits(value: object, label: str) -> QueueLimits:
    if isinstance(value, str):  # the environment form: reports=2,exports=1
        pairs: dict[str, str] = {}
        for item in (part.strip() for part in value.split(",")):
            queue, sep, limit = item.partition("=")
            if item and not sep:
                raise ConfigError(f"{label} must look like 'reports=2,exports=1', got {value!r}")
            if item:
                pairs[queue.strip()] = limit.strip()
        value = pairs
    if not isinstance(value, Mapping):
        raise ConfigError(f"{label} must map queue names to limits, e.g. {{'reports': 2}}, got {value!r}")
    limits: dict[str, int] = {}
    for queue, limit in value.items():
        name = _identifier(identifiers.queue_name, queue.strip() if isinstance(queue, str) else queue, label)
        limits[name] = integer(1, 10_000)(limit, f"{label}[{name!r}]")
    return QueueLimits(limits)


def redact(url: str) -> str:
    """The URL with its password replaced by '***', for messages."""
    return re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1***@", url)
