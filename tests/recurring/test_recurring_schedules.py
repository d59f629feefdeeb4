"""Schedule strings → run times (naive UTC), every kind, both DST changes in two zones.

Pure code: no database, the "clock" is the instant each test passes in.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from quebec.schedules import Cron, Interval, NextRun, parse


def utc(*args: int) -> datetime:
    return datetime(*args)  # naive UTC, as every table stores it


def runs(text: str, after: datetime, count: int) -> list[datetime]:
    schedule = parse(text)
    out: list[datetime] = []
    t = after
    for _ in range(count):
        nxt = schedule.next_after(t)
        assert nxt is not None
        out.append(nxt)
        t = nxt
    return out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("* * * * *", [utc(2026, 12, 2, 15, 41), utc(2026, 12, 2, 15, 42)]),
        ("*/20 * * * * *", [utc(2026, 12, 2, 15, 40, 40), utc(2026, 12, 2, 15, 41)]),  # seconds first
        ("@hourly", [utc(2026, 12, 2, 16), utc(2026, 12, 2, 17)]),
        ("@daily", [utc(2026, 12, 3), utc(2026, 12, 4)]),
        ("@weekly", [utc(2026, 12, 6), utc(2026, 12, 13)]),  # Sundays
        ("@monthly", [utc(2027, 1, 1), utc(2027, 2, 1)]),
        ("@yearly", [utc(2027, 1, 1), utc(2028, 1, 1)]),
        ("every second", [utc(2026, 12, 2, 15, 40, 31), utc(2026, 12, 2, 15, 40, 32)]),
        ("every 5 minutes", [utc(2026, 12, 2, 15, 45), utc(2026, 12, 2, 15, 50)]),
        ("every hour", [utc(2026, 12, 2, 16), utc(2026, 12, 2, 17)]),
        ("every day at noon", [utc(2026, 12, 3, 12), utc(2026, 12, 4, 12)]),
        ("every monday at 9am", [utc(2026, 12, 7, 9), utc(2026, 12, 14, 9)]),
        ("every weekday at 9:30pm", [utc(2026, 12, 2, 21, 30), utc(2026, 12, 3, 21, 30)]),
        ("every day at 21:15", [utc(2026, 12, 2, 21, 15), utc(2026, 12, 3, 21, 15)]),
        ("every 7 minutes", [utc(2026, 12, 2, 15, 43), utc(2026, 12, 2, 15, 50)]),  # from the epoch
        ("0 9 * * * Europe/Berlin", [utc(2026, 12, 3, 8), utc(2026, 12, 4, 8)]),
        ("every day at noon America/New_York", [utc(2026, 12, 2, 17), utc(2026, 12, 3, 17)]),
    ],
)
def test_each_schedule_kind_gives_its_run_times_in_utc(text: str, expected: list[datetime]) -> None:
    assert runs(text, utc(2026, 12, 2, 15, 40, 30), len(expected)) == expected


def test_latest_until_includes_the_instant_itself_and_nothing_later() -> None:
    schedule = parse("every 5 minutes")
    assert schedule.latest_until(utc(2026, 12, 2, 15, 45)) == utc(2026, 12, 2, 15, 45)
    assert schedule.latest_until(utc(2026, 12, 2, 15, 44, 59, 999999)) == utc(2026, 12, 2, 15, 40)


# -- DST: a fixed-time task runs once, late on spring-forward and once on fall-back ----------
@pytest.mark.parametrize(
    ("zone", "spring", "fall", "repeated_hour"),
    [
        ("Europe/Berlin", datetime(2026, 3, 28, 12), datetime(2026, 10, 24, 12), 2),  # 03:00 CEST → 02:00 CET
        ("America/New_York", datetime(2026, 3, 7, 12), datetime(2026, 10, 31, 12), 1),  # 02:00 EDT → 01:00 EST
    ],
)
def test_a_task_in_the_skipped_hour_runs_once_late_and_in_the_repeated_hour_once(
    zone: str, spring: datetime, fall: datetime, repeated_hour: int
) -> None:
    from zoneinfo import ZoneInfo

    local = ZoneInfo(zone)

    def local_runs(after_local: datetime) -> list[datetime]:
        after = after_local.replace(tzinfo=local).astimezone(UTC).replace(tzinfo=None)
        found = runs(f"30 2 * * * {zone}", after, 3)
        return [r.replace(tzinfo=UTC).astimezone(local).replace(tzinfo=None) for r in found]

    day = timedelta(days=1)
    # Spring forward: 02:30 does not exist that night; the run comes at 03:00, once.
    assert local_runs(spring) == [
        (spring + day).replace(hour=3, minute=0),
        *((spring + n * day).replace(hour=2, minute=30) for n in (2, 3)),
    ]
    # Fall back: 02:30 happens twice that night; the task runs at the first one only.
    fall_utc = fall.replace(tzinfo=local).astimezone(UTC).replace(tzinfo=None)
    fall_runs = runs(f"30 {repeated_hour} * * * {zone}", fall_utc, 3)
    assert [r - fall_runs[0] for r in fall_runs[1:]] == [timedelta(hours=25), timedelta(hours=49)]


@pytest.mark.parametrize(
    ("zone", "spring_utc", "fall_utc"),
    [
        ("Europe/Berlin", datetime(2026, 3, 29, 0), datetime(2026, 10, 25, 0)),
        ("America/New_York", datetime(2026, 3, 8, 6), datetime(2026, 11, 1, 5)),
    ],
)
def test_sub_hourly_tasks_keep_their_cadence_through_both_changes(
    zone: str, spring_utc: datetime, fall_utc: datetime
) -> None:
    for start in (spring_utc, fall_utc):
        times = runs(f"*/15 * * * * {zone}", start, 16)  # four hours around the change
        assert {b - a for a, b in zip(times, times[1:], strict=False)} == {timedelta(minutes=15)}


def test_an_hourly_task_runs_each_real_hour_on_fall_back_in_berlin() -> None:
    times = runs("0 * * * * Europe/Berlin", utc(2026, 10, 24, 22, 30), 6)
    assert {b - a for a, b in zip(times, times[1:], strict=False)} == {timedelta(hours=1)}


# -- intervals and next-run functions ------------------------------------------------------
def test_an_interval_runs_from_its_start_at_most_max_count_times() -> None:
    schedule = parse("every 90 seconds from 2026-12-02T15:00:00Z, 3 times")
    assert isinstance(schedule, Interval)
    assert schedule.next_after(utc(2026, 12, 2, 14)) == utc(2026, 12, 2, 15)
    assert schedule.next_after(utc(2026, 12, 2, 15)) == utc(2026, 12, 2, 15, 1, 30)
    assert schedule.latest_until(utc(2026, 12, 2, 16)) == utc(2026, 12, 2, 15, 3)  # the third and last
    assert schedule.next_after(utc(2026, 12, 2, 15, 3)) is None
    assert schedule.latest_until(utc(2026, 12, 2, 14, 59)) is None


def test_an_interval_written_in_python_reads_back_the_same() -> None:
    start = datetime(2026, 12, 2, 16, 0, tzinfo=UTC) + timedelta(hours=1)
    made = Interval(timedelta(minutes=10), start=start, max_count=5)
    assert made.text == "every 600 seconds from 2026-12-02T17:00:00Z, 5 times"
    assert parse(made.text) == made


def test_an_interval_is_a_dst_free_cadence() -> None:
    schedule = parse("every 1 hour from 2026-10-24T22:00:00Z")
    assert schedule.next_after(utc(2026, 10, 25, 0, 30)) == utc(2026, 10, 25, 1)


def test_a_next_run_function_decides_each_following_run() -> None:
    def weekdays_at_nine(previous: datetime) -> datetime:
        nxt = previous + timedelta(days=1)
        while nxt.weekday() >= 5:
            nxt += timedelta(days=1)
        return nxt

    text = "next_run weekdays_at_nine from 2026-12-04T09:00:00Z, 3 times"
    schedule = parse(text, {"weekdays_at_nine": weekdays_at_nine})
    assert isinstance(schedule, NextRun)
    assert schedule.next_after(utc(2026, 12, 4, 9)) == utc(2026, 12, 7, 9)  # Friday → Monday
    assert schedule.latest_until(utc(2026, 12, 31)) == utc(2026, 12, 8, 9)  # the third run
    assert schedule.next_after(utc(2026, 12, 8, 9)) is None


def test_a_next_run_function_returning_none_ends_the_schedule() -> None:
    schedule = parse("next_run once from 2026-12-04T09:00:00Z", {"once": lambda previous: None})
    assert schedule.latest_until(utc(2027, 1, 1)) == utc(2026, 12, 4, 9)
    assert schedule.next_after(utc(2026, 12, 4, 9)) is None


def test_cron_at_second_zero_is_evaluated_as_five_fields_for_debian_dst_rules() -> None:
    for text in ("0 9 * * * UTC", "0 0 9 * * * UTC", "every day at 9am UTC"):
        schedule = parse(text)
        assert isinstance(schedule, Cron) and schedule.expression == "0 9 * * *"


# -- bad input: one sentence naming the value and the fix ----------------------------------
@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("*/5 * * * x", ["not valid cron", "Bad day-of-week", "every 5 minutes"]),
        ("0 9 * * * Europe/Berln", ["'Europe/Berln' is not a time zone", "IANA"]),
        ("every 0 seconds", ["interval of 0", "at least 1 second"]),
        ("every 0 minutes from 2026-01-01T00:00:00Z", ["interval of 0"]),
        ("every fortnight", ["not a phrase", "docs/recurring.md"]),
        ("@often", ["unknown alias", "@hourly"]),
        ("every day at 25:00", ["'25:00' is not a time of day"]),
        ("next_run missing from 2026-01-01T00:00:00Z", ["'missing'", "not registered", "@qc.next_run_function"]),
        ("", ["non-empty string"]),
        ("1 2 3", ["3 fields"]),
    ],
)
def test_a_bad_schedule_is_one_sentence_with_the_fix(text: str, words: list[str]) -> None:
    with pytest.raises(ValueError) as err:
        parse(text)
    message = str(err.value)
    assert "\n" not in message
    for word in words:
        assert word in message


@pytest.mark.parametrize("bad", [timedelta(0), timedelta(seconds=-5), timedelta(milliseconds=1500), 60])
def test_an_interval_must_be_whole_positive_seconds(bad: object) -> None:
    with pytest.raises(ValueError, match="interval must be"):
        Interval(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, -1, True, 2.5])
def test_max_count_must_be_a_positive_integer(bad: object) -> None:
    with pytest.raises(ValueError, match="max_count must be an integer"):
        Interval(timedelta(minutes=1), max_count=bad)  # type: ignore[arg-type]
