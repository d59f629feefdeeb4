"""Enqueue options (wait, wait_until, queue, priority): checked once, where they come in.

Every way in goes through `job_options` (or JobOptions itself): `Job.set(...)`, a chained
`.set(...)`, and the wheel's `_scheduled_at=` / `_queue=` / `_priority=` keyword arguments
of `build` and `perform_later`. So a JobOptions always holds sound values — wait a finite
timedelta ≥ 0, wait_until an aware UTC datetime within what every backend stores, queue a
valid name, priority an int that fits the 32-bit column — and a mistake is reported at the
call that made it, naming the option, the value and the fix.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from quebec.errors import EnqueueOptionError, InvalidIdentifier
from quebec.identifiers import queue_name

log = logging.getLogger("quebec")

# jobs.priority (and the execution tables' copies) is INTEGER: 32 bits on PostgreSQL and
# MySQL. SQLite would take 64, but a job must fit every backend the same way.
PRIORITY_MIN, PRIORITY_MAX = -(2**31), 2**31 - 1
# MySQL's DATETIME holds years 1000 to 9999; PostgreSQL and SQLite hold more.
EARLIEST = datetime(1000, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
RESERVED_KWARGS = ("_scheduled_at", "_queue", "_priority")
_NAMES = ("wait", "wait_until", "queue", "priority")


class _OptionsMapping(Mapping[str, Any]):
    """JobOptions read as the wheel's options dict: only the options that were given."""

    __slots__ = ()

    def __getitem__(self, key: str) -> Any:
        value = getattr(self, key, None) if key in _NAMES else None
        if value is None:
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[str]:
        return (name for name in _NAMES if getattr(self, name) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


@dataclass(frozen=True, slots=True)
class JobOptions(_OptionsMapping):
    """Options bound by `Job.set(...)`; validated and normalised on construction. Reads as the
    wheel's options dict too (`options["queue"]`, `dict(options)`)."""

    wait: timedelta | None = None
    wait_until: datetime | None = None
    queue: str | None = None
    priority: int | None = None

    def __post_init__(self) -> None:
        checked = _check("JobOptions", self.wait, self.wait_until, self.queue, self.priority)
        for name, value in zip(_NAMES, checked, strict=True):
            object.__setattr__(self, name, value)


def job_options(owner: str, **given: Any) -> JobOptions:
    """`{owner}.set(**given)`: unknown names, bad values and wait with wait_until are refused."""
    unknown = sorted(set(given) - set(_NAMES))
    if unknown:
        raise EnqueueOptionError(
            f"{owner}.set() got unknown option {', '.join(map(repr, unknown))}; the options are {', '.join(_NAMES)}"
        )
    values = [given.get(name) for name in _NAMES]
    return JobOptions(*_check(f"{owner}.set", *values))


def merge(base: JobOptions, owner: str, **given: Any) -> JobOptions:
    """A chained `.set(**given)` on `base`: given options replace base ones; a new wait or
    wait_until replaces the other one bound before."""
    new = job_options(owner, **given)
    wait, until = base.wait, base.wait_until
    if new.wait is not None or new.wait_until is not None:
        wait, until = new.wait, new.wait_until
    return JobOptions(
        wait=wait,
        wait_until=until,
        queue=new.queue if new.queue is not None else base.queue,
        priority=new.priority if new.priority is not None else base.priority,
    )


def from_reserved(owner: str, kwargs: dict[str, Any], base: JobOptions) -> JobOptions:
    """Pop the wheel's `_scheduled_at` (a datetime or a Unix timestamp), `_queue` and
    `_priority` keyword arguments out of `kwargs` and merge them over `base`."""
    found = {name: kwargs.pop(name) for name in RESERVED_KWARGS if name in kwargs}
    if not found:
        return base
    given: dict[str, Any] = {}
    if "_scheduled_at" in found:
        given["wait_until"] = _timestamp(f"{owner}.perform_later(_scheduled_at=…)", found["_scheduled_at"])
    if "_queue" in found:
        given["queue"] = _queue(f"{owner}.perform_later(_queue=…)", found["_queue"])
    if "_priority" in found:
        given["priority"] = check_priority(f"{owner}.perform_later(_priority=…)", found["_priority"])
    return merge(base, owner, **given)


def scheduled_at(options: JobOptions, now: datetime, owner: str) -> datetime:
    """When the job is due, as the naive UTC the tables store."""
    if options.wait_until is not None:
        return options.wait_until.replace(tzinfo=None)
    if options.wait is None:
        return now
    try:
        return now + options.wait
    except OverflowError:
        raise EnqueueOptionError(_too_far(f"{owner}.set(wait=…)", options.wait)) from None


def check_priority(where: str, value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and PRIORITY_MIN <= value <= PRIORITY_MAX:
        return value
    kind = f" (a {type(value).__name__})" if not isinstance(value, int) or isinstance(value, bool) else ""
    raise EnqueueOptionError(
        f"{where} must be an int from {PRIORITY_MIN} to {PRIORITY_MAX} (lower runs first), got {_shown(value)}{kind}"
    )


def _check(
    where: str, wait: object, wait_until: object, queue: object, priority: object
) -> tuple[timedelta | None, datetime | None, str | None, int | None]:
    if wait is not None and wait_until is not None:
        both = f"wait={_shown(wait)} and wait_until={_shown(wait_until)}"
        raise EnqueueOptionError(f"{where}() got both {both}; pass one of them")
    return (
        None if wait is None else _wait(f"{where}(wait=…)", wait),
        None if wait_until is None else _wait_until(f"{where}(wait_until=…)", wait_until),
        None if queue is None else _queue(f"{where}(queue=…)", queue),
        None if priority is None else check_priority(f"{where}(priority=…)", priority),
    )


def _wait(where: str, value: object) -> timedelta:
    seconds: float | int
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value  # an int stays exact: float() of 10**400 would overflow
    else:
        raise EnqueueOptionError(f"{where} must be seconds (an int or float) or a timedelta, got {_shown(value)}")
    if isinstance(seconds, float) and not math.isfinite(seconds):
        raise EnqueueOptionError(f"{where} must be a finite number of seconds, got {_shown(value)}")
    if seconds < 0:
        raise EnqueueOptionError(f"{where} must be ≥ 0 seconds, got {_shown(value)}; use 0 or leave it out to run now")
    if seconds > (LATEST - datetime.now(UTC)).total_seconds():
        raise EnqueueOptionError(_too_far(where, value))
    return value if isinstance(value, timedelta) else timedelta(seconds=seconds)


def _too_far(where: str, value: object) -> str:
    return f"{where} of {_shown(value)} is later than {LATEST:%Y-%m-%d}, the last day every backend stores; wait less"


def _wait_until(where: str, value: object) -> datetime:
    if not isinstance(value, datetime):
        hint = "; use datetime.combine(day, time(), tzinfo=UTC) for a date" if isinstance(value, date) else ""
        raise EnqueueOptionError(f"{where} must be a datetime, got {_shown(value)}{hint}")
    naive = value.tzinfo is None or value.utcoffset() is None
    try:
        at: datetime | None = value.replace(tzinfo=UTC) if naive else value.astimezone(UTC)
    except OverflowError:  # an offset that takes it past year 1 or 9999
        at = None
    if at is None or not EARLIEST <= at <= LATEST:
        raise EnqueueOptionError(
            f"{where} must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} (what every backend stores), "
            f"got {_shown(value)}; a time in the past runs the job now"
        )
    if naive:
        _NAIVE.warn(where, value, at)
    return at


def _timestamp(where: str, value: object) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            pass
    raise EnqueueOptionError(
        f"{where} must be a datetime or a Unix timestamp in seconds (as time.time() gives), got {_shown(value)}"
    )


def _shown(value: object) -> str:
    """repr(value) cut to a readable length (a wait of 10**400 is one value, not a page)."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}…({len(text)} characters)"


def _queue(where: str, value: object) -> str:
    try:
        return queue_name(value)
    except InvalidIdentifier as err:
        raise InvalidIdentifier(f"{where}: {err}") from None


class _OncePerProcess:
    """The naive-wait_until warning: logged the first time only, so a loop does not flood."""

    def __init__(self) -> None:
        self.warned = False
        self._lock = threading.Lock()

    def warn(self, where: str, value: datetime, at: datetime) -> None:
        with self._lock:
            if self.warned:
                return
            self.warned = True
        log.warning(
            "%s got the naive datetime %r, which is read as UTC: the job is due at %s UTC; pass an aware "
            "datetime (e.g. datetime.now(UTC) + timedelta(...)) to mean another time zone (shown once per process)",
            where,
            value,
            f"{at:%Y-%m-%d %H:%M:%S}",
        )


_NAIVE = _OncePerProcess()
NO_OPTIONS = JobOptions()
