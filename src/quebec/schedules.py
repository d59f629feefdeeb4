"""Recurring schedules: a schedule string → run times, as naive UTC datetimes.

Every scheduler parses the same stored string (recurring_tasks.schedule) and so computes
the same run times. Kinds (docs/recurring.md lists the syntax):

- cron, 5 fields or 6 with seconds first (Fugit's order), `@hourly`-style aliases, and an
  optional trailing IANA time zone; evaluated by cronsim, which follows Debian cron on DST
  (a fixed-time task in the skipped hour runs once, late; in the repeated hour, once);
- English phrases Solid Queue users write (`every 5 minutes`, `every monday at 9am`),
  turned into cron by a small front end here, or into an interval when cron cannot say it;
- a fixed interval from a start time, optionally at most `max_count` times;
- a user-registered next-run function from a start time, likewise.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from quebec.clock import to_naive_utc

NextRunFunction = Callable[[datetime], datetime | None]
EPOCH = datetime(1970, 1, 1)
# A next-run function is asked at most this many times per answer: a schedule that needs
# more (every second for a year) belongs to an interval, whose times are arithmetic.
MAX_STEPS = 100_000
_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}
_DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
_FIX = (
    "write cron (5 fields, or 6 with seconds first), an alias such as @hourly, or a phrase such as "
    "'every 5 minutes' or 'every monday at 9am' (docs/recurring.md lists them)"
)


class Schedule(Protocol):
    """Run times of one task. `text` is what recurring_tasks.schedule stores."""

    @property
    def text(self) -> str: ...

    def next_after(self, t: datetime) -> datetime | None:
        """The first run time strictly after `t` (naive UTC); None when the schedule has ended."""
        ...

    def latest_until(self, t: datetime) -> datetime | None:
        """The last run time at or before `t` (naive UTC); None when there was none."""
        ...


@dataclass(frozen=True, slots=True)
class Cron:
    expression: str  # 5 fields, or 6 with seconds first when the seconds are not 0
    zone: ZoneInfo | None
    text: str

    def next_after(self, t: datetime) -> datetime | None:
        return _utc(next(CronSim(self.expression, self._local(t))))

    def latest_until(self, t: datetime) -> datetime | None:
        # cronsim's reverse iteration is strict; a second later includes `t` itself.
        return _utc(next(CronSim(self.expression, self._local(t.replace(microsecond=0) + timedelta(seconds=1)), True)))

    def _local(self, t: datetime) -> datetime:
        aware = t.replace(tzinfo=UTC)
        return aware.astimezone(self.zone) if self.zone is not None else aware


@dataclass(frozen=True, slots=True)
class Interval:
    """Every `every` from `start` (None: the time qc.schedule() stores; phrases: the Unix epoch),
    at most `max_count` times (None: forever)."""

    every: timedelta
    start: datetime | None = None
    max_count: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.every, timedelta) or self.every < timedelta(seconds=1):
            raise ValueError(f"an interval must be a timedelta of at least 1 second, got {self.every!r}")
        if self.every.microseconds:
            raise ValueError(f"an interval must be whole seconds, got {self.every!r}")
        _start_and_count(self, self.start, self.max_count)

    @property
    def text(self) -> str:
        return _with_start(f"every {int(self.every.total_seconds())} seconds", self.start, self.max_count)

    def next_after(self, t: datetime) -> datetime | None:
        start = EPOCH if self.start is None else self.start
        k = 0 if t < start else (t - start) // self.every + 1
        return self._nth(k)

    def latest_until(self, t: datetime) -> datetime | None:
        start = EPOCH if self.start is None else self.start
        if t < start:
            return None
        k = (t - start) // self.every
        if self.max_count is not None:
            k = min(k, self.max_count - 1)
        return self._nth(k)

    def _nth(self, k: int) -> datetime | None:
        if self.max_count is not None and k >= self.max_count:
            return None
        return (EPOCH if self.start is None else self.start) + k * self.every


@dataclass(frozen=True, slots=True)
class NextRun:
    """A registered function's schedule: the first run at `start`, each next one at
    `function(previous)` (an aware UTC datetime in; a datetime, or None to end, out)."""

    name: str
    start: datetime | None = None
    max_count: int | None = None
    function: NextRunFunction | None = field(default=None, compare=False, repr=False)
    _times: list[datetime] = field(default_factory=list, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not re.fullmatch(r"[A-Za-z_][\w.]*", self.name):
            raise ValueError(f"a next-run function name must be an identifier such as 'weekdays', got {self.name!r}")
        _start_and_count(self, self.start, self.max_count)

    @property
    def text(self) -> str:
        return _with_start(f"next_run {self.name}", self.start, self.max_count)

    def next_after(self, t: datetime) -> datetime | None:
        times = self._times_through(t)
        i = bisect_right(times, t)
        return times[i] if i < len(times) else None

    def latest_until(self, t: datetime) -> datetime | None:
        times = self._times_through(t)
        i = bisect_right(times, t)
        return times[i - 1] if i else None

    def _times_through(self, t: datetime) -> list[datetime]:
        """Run times up to the first one after `t` (or the end), computed once and kept."""
        assert self.function is not None and self.start is not None, "bound by parse()"
        times = self._times
        if not times:
            times.append(self.start)
        for _ in range(MAX_STEPS):
            if times[-1] > t or (self.max_count is not None and len(times) >= self.max_count):
                return times
            following = self.function(times[-1].replace(tzinfo=UTC))
            if following is None:
                return times
            nxt = to_naive_utc(following).replace(microsecond=0)
            if nxt <= times[-1]:
                raise ValueError(
                    f"next-run function {self.name!r} returned {following!r} after {times[-1]} UTC; it must "
                    f"return a later time (or None to end the schedule)"
                )
            times.append(nxt)
        raise ValueError(
            f"next-run function {self.name!r} needed more than {MAX_STEPS:,} runs to reach {t} UTC; "
            f"use an interval for schedules this dense"
        )


def parse(text: object, functions: Mapping[str, NextRunFunction] | None = None) -> Schedule:
    """The schedule a stored or configured string describes; ValueError names the problem and the fix."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"a schedule must be a non-empty string, got {text!r}; {_FIX}")
    words = text.strip().split()
    source = " ".join(words)
    zone = _zone(words[-1]) if len(words) > 1 and _looks_like_zone(words[-1]) else None
    body = words[:-1] if zone is not None else words
    head = body[0].lower()
    if head in ("every", "next_run") and " from " in f" {' '.join(body).lower()} ":
        if zone is not None:
            raise ValueError(f"schedule {source!r} gives a time zone and a start; give the start with its offset")
        return _started(" ".join(body), functions or {})
    if head.startswith("@"):
        if head not in _ALIASES:
            raise ValueError(f"schedule {source!r} uses an unknown alias {body[0]!r}; use one of {', '.join(_ALIASES)}")
        return _cron(_ALIASES[head], zone, source)
    if head == "every":
        found = _phrase(" ".join(body).lower())
        if found is None:
            raise ValueError(f"schedule {source!r} is not a phrase Quebec knows; {_FIX}")
        if isinstance(found, Interval):
            if zone is not None:
                raise ValueError(f"schedule {source!r}: an interval of seconds, minutes or hours takes no time zone")
            return found
        return _cron(found, zone, source)
    if len(body) in (5, 6):
        return _cron(" ".join(body), zone, source)
    raise ValueError(f"schedule {source!r} has {len(body)} fields; {_FIX}")


def _cron(expression: str, zone: ZoneInfo | None, source: str) -> Cron:
    fields_ = expression.split()
    if len(fields_) == 6 and fields_[0] == "0":
        # cronsim applies Debian cron's DST rules to 5-field expressions only: at second 0
        # both forms mean the same runs, so the 5-field one gets them.
        fields_ = fields_[1:]
    cron = " ".join(fields_)
    try:
        CronSim(cron, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        raise ValueError(f"schedule {source!r} is not valid cron ({exc}); {_FIX}") from None
    return Cron(cron, zone, source)


def _looks_like_zone(word: str) -> bool:
    # Area/City names, and UTC: a bare word such as "Monday" stays part of the phrase.
    return "/" in word or word.upper() in ("UTC", "GMT")


def _zone(word: str) -> ZoneInfo:
    try:
        return ZoneInfo(word)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{word!r} is not a time zone this system knows; use an IANA name such as Europe/Berlin or "
            f"America/New_York (pip install tzdata where the system has none)"
        ) from None


_AT = r"(?:\s+at\s+(?P<at>.+))?"
_EVERY_N = re.compile(r"every\s+(?:(?P<n>\d+)\s+)?(?P<unit>second|minute|hour|day|week)s?")
_EVERY_DAY = re.compile(rf"every\s+(?P<days>day|weekday|{'|'.join(_DAYS)})s?{_AT}")
_TIME = re.compile(r"(?P<h>\d{1,2})(?::(?P<m>\d{2}))?\s*(?P<ampm>am|pm)?")


def _phrase(phrase: str) -> str | Interval | None:
    """A phrase as 6-field cron, or an Interval (from the epoch) when cron cannot say it."""
    if m := _EVERY_N.fullmatch(phrase):
        n, unit = int(m["n"] or 1), m["unit"]
        if n < 1:
            raise ValueError(f"schedule {phrase!r} has an interval of 0; give at least 1 {unit}")
        cron = {
            "second": f"*/{n} * * * * *" if 60 % n == 0 else None,
            "minute": f"0 */{n} * * * *" if 60 % n == 0 else None,
            "hour": f"0 0 */{n} * * *" if 24 % n == 0 else None,
            "day": "0 0 0 * * *" if n == 1 else None,
            "week": "0 0 0 * * 0" if n == 1 else None,
        }[unit]
        return cron.replace("*/1 ", "* ") if cron else Interval(timedelta(seconds=n * _UNITS[unit]))
    if m := _EVERY_DAY.fullmatch(phrase):
        minute, hour = _time_of_day(m["at"], phrase) if m["at"] else (0, 0)
        days = m["days"]
        weekday = "*" if days == "day" else "1-5" if days == "weekday" else str(_DAYS.index(days))
        return f"0 {minute} {hour} * * {weekday}"
    return None


def _time_of_day(at: str, phrase: str) -> tuple[int, int]:
    at = at.strip()
    if at in ("noon", "midday"):
        return 0, 12
    if at == "midnight":
        return 0, 0
    m = _TIME.fullmatch(at)
    if m is None:
        raise ValueError(f"schedule {phrase!r} has a time {at!r} Quebec cannot read; write 9am, 9:30pm, 21:00 or noon")
    hour, minute = int(m["h"]), int(m["m"] or 0)
    if m["ampm"]:
        if not 1 <= hour <= 12:
            raise ValueError(f"schedule {phrase!r}: {at!r} is not a time; with am/pm the hour is 1 to 12")
        hour = hour % 12 + (12 if m["ampm"] == "pm" else 0)
    if hour > 23 or minute > 59:
        raise ValueError(f"schedule {phrase!r}: {at!r} is not a time of day")
    return minute, hour


_STARTED = re.compile(
    r"(?:every\s+(?P<n>\d+)\s+(?P<unit>second|minute|hour|day|week)s?|next_run\s+(?P<fn>\S+))"
    r"\s+from\s+(?P<start>[^\s,]+)(?:,?\s+(?P<count>\d+)\s+times?)?",
    re.IGNORECASE,
)


def _started(text: str, functions: Mapping[str, NextRunFunction]) -> Schedule:
    m = _STARTED.fullmatch(text)
    if m is None:
        raise ValueError(
            f"schedule {text!r} is not readable; write 'every 90 seconds from 2026-01-01T00:00:00Z[, 10 times]' "
            f"or 'next_run <function> from <ISO time>[, N times]'"
        )
    try:
        start = datetime.fromisoformat(m["start"].replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"schedule {text!r}: {m['start']!r} is not an ISO 8601 time, e.g. 2026-01-01T09:00Z") from None
    count = int(m["count"]) if m["count"] else None
    if m["fn"] is None:
        seconds = int(m["n"]) * _UNITS[m["unit"].lower()]
        if seconds < 1:
            raise ValueError(f"schedule {text!r} has an interval of 0; give at least 1 {m['unit']}")
        return Interval(timedelta(seconds=seconds), start, count)
    function = functions.get(m["fn"])
    if function is None:
        raise ValueError(
            f"schedule {text!r} names next-run function {m['fn']!r}, which is not registered in this process; "
            f"register it with @qc.next_run_function({m['fn']!r})"
        )
    return NextRun(m["fn"], start, count, function)


def _with_start(head: str, start: datetime | None, max_count: int | None) -> str:
    if start is None:
        return head
    text = f"{head} from {start.isoformat()}Z"
    return f"{text}, {max_count} times" if max_count is not None else text


def _start_and_count(schedule: Interval | NextRun, start: object, max_count: object) -> None:
    """Check `start` and `max_count`, and store the start as naive UTC to the second."""
    if max_count is not None and (isinstance(max_count, bool) or not isinstance(max_count, int) or max_count < 1):
        raise ValueError(f"max_count must be an integer ≥ 1 (or None for no limit), got {max_count!r}")
    if start is None:
        return
    if not isinstance(start, datetime):
        raise ValueError(f"start must be a datetime (naive means UTC), got {start!r}")
    object.__setattr__(schedule, "start", to_naive_utc(start).replace(microsecond=0))


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


@dataclass(frozen=True, slots=True)
class RecurringTask:
    """One row of recurring_tasks. `arguments` are positional, plain JSON values."""

    key: str
    schedule: str
    class_name: str
    arguments: tuple[Any, ...] = ()
    queue_name: str | None = None
    priority: int | None = None
    static: bool = True
    description: str | None = None
    updated_at: datetime | None = field(default=None, compare=False)
    paused_at: datetime | None = field(default=None, compare=False)
