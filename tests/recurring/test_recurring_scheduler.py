"""The scheduler stepped through run_once() with a frozen clock, on every backend.

Each run time is enqueued once, whatever the number of schedulers; a scheduler that was
down enqueues only the latest missed run; pauses skip runs; the file's static tasks are
synced, stale ones deleted.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

import quebec
from quebec.clock import FrozenClock
from quebec.config.recurring import StaticTasks, load_static
from quebec.engine.scheduler import Scheduler
from quebec.schedules import RecurringTask

START = datetime(2026, 12, 2, 15, 40, 0, 500000)


class Report(quebec.BaseClass):
    def perform(self, *args: Any) -> None:
        pass


@pytest.fixture
def qc(make_qc: Callable[..., Any]) -> Any:
    qc = make_qc(recurring_pause=True)
    qc.db.clock = FrozenClock(START)
    qc.register_job(Report)
    return qc


def scheduler(qc: Any, static: StaticTasks | None = None) -> Scheduler:
    return Scheduler(
        qc.db,
        registry=qc.registry,
        static=static or StaticTasks(),
        functions=qc.next_run_functions,
        forced_queue=None,
        add_pause_column=qc.settings.recurring_pause,
        sealer=qc.sealing.sealer,
    )


def runs(qc: Any) -> list[tuple[str, datetime, int]]:
    """(task_key, run_at, jobs per run) for every recorded run, oldest first."""
    e, j = qc.db.tables.recurring_executions, qc.db.tables.jobs
    with qc.db.engine.connect() as conn:
        rows = conn.execute(
            select(e.c.task_key, e.c.run_at, func.count(j.c.id))
            .join(j, j.c.id == e.c.job_id)
            .group_by(e.c.task_key, e.c.run_at)
            .order_by(e.c.run_at)
        ).all()
        assert conn.scalar(select(func.count()).select_from(j)) == len(rows)  # no job without its run
    return [(k, at.replace(microsecond=0) if at.microsecond == 0 else at, n) for k, at, n in rows]


def advance(qc: Any, seconds: float) -> None:
    qc.db.clock.advance(seconds)


def test_a_run_is_enqueued_once_when_its_time_comes(qc: Any) -> None:
    qc.schedule("report", Report, "every minute", args=[1, "x"], queue="reports", priority=7)
    s = scheduler(qc)
    assert s.run_once() == s.polling_interval  # the next run is further off than the polling interval
    assert runs(qc) == []
    advance(qc, 60)  # 15:41:00.5
    s.run_once()
    s.run_once()
    assert runs(qc) == [("report", datetime(2026, 12, 2, 15, 41), 1)]
    job_id = s.fired[-1][2]
    job = qc.get_job(job_id)
    assert (job.class_name, job.queue_name, job.priority) == ("Report", "reports", 7)
    assert json.loads(job.arguments)["arguments"]["arguments"] == [1, "x"]
    assert qc.recurring_task_of(job_id) == "report"
    assert qc.recurring_task_of(job_id + 1000) is None
    advance(qc, 60)
    s.run_once()
    assert [r[1] for r in runs(qc)] == [datetime(2026, 12, 2, 15, 41), datetime(2026, 12, 2, 15, 42)]


def test_the_job_takes_the_class_queue_and_priority_unless_the_task_gives_them(qc: Any) -> None:
    @qc.register_job
    class Mailer(quebec.BaseClass):
        queue_as = "mail"
        queue_with_priority = 3

        def perform(self) -> None:
            pass

    qc.schedule("mail", Mailer, "every second")
    s = scheduler(qc)
    s.run_once()
    advance(qc, 1)
    s.run_once()
    job = qc.get_job(s.fired[-1][2])
    assert (job.queue_name, job.priority) == ("mail", 3)


def test_schedulers_racing_for_one_run_enqueue_it_once(qc: Any) -> None:
    qc.schedule("report", Report, "every second")
    racers = [scheduler(qc) for _ in range(5)]
    for s in racers:
        s.run_once()
    for _ in range(3):
        advance(qc, 1)
        barrier = threading.Barrier(len(racers))

        def race(s: Scheduler, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            s.run_once()

        threads = [threading.Thread(target=race, args=(s,)) for s in racers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    recorded = runs(qc)
    assert [n for _, _, n in recorded] == [1, 1, 1]
    assert [at for _, at, _ in recorded] == [datetime(2026, 12, 2, 15, 40, s) for s in (1, 2, 3)]
    assert sum(len(s.fired) for s in racers) == 3  # the losers enqueued nothing


def test_a_scheduler_that_was_down_enqueues_only_the_latest_missed_run(qc: Any) -> None:
    qc.schedule("report", Report, "every minute")
    first = scheduler(qc)
    first.run_once()
    advance(qc, 60)
    first.run_once()
    advance(qc, 10 * 60)  # down for ten runs
    scheduler(qc).run_once()
    assert [at for _, at, _ in runs(qc)] == [datetime(2026, 12, 2, 15, 41), datetime(2026, 12, 2, 15, 51)]


def test_a_new_task_does_not_fire_runs_from_before_it_existed(qc: Any) -> None:
    s = scheduler(qc)
    s.run_once()
    advance(qc, 30)
    qc.schedule("report", Report, "@hourly")
    s.run_once()
    assert runs(qc) == []


def test_a_paused_task_skips_its_runs_and_resumes_with_the_next_one(qc: Any) -> None:
    qc.schedule("report", Report, "every minute")
    s = scheduler(qc)
    s.run_once()
    assert qc.pause_recurring("report") is True
    assert qc.pause_recurring("report") is False
    assert qc.recurring_paused("report") is True
    assert qc.paused_recurring_tasks() == ["report"]
    advance(qc, 60)
    s.run_once()
    advance(qc, 60)
    s.run_once()
    assert runs(qc) == []
    advance(qc, 30)  # 15:42:30.5: resumed between runs
    assert qc.resume_recurring("report") is True
    assert qc.resume_recurring("report") is False
    scheduler(qc).run_once()  # a scheduler starting now replays nothing either
    s.run_once()
    assert runs(qc) == []
    advance(qc, 30)
    s.run_once()
    assert [at for _, at, _ in runs(qc)] == [datetime(2026, 12, 2, 15, 43)]


def test_an_interval_task_stops_after_max_count(qc: Any) -> None:
    qc.schedule("report", Report, quebec.Interval(timedelta(seconds=30), max_count=3))
    s = scheduler(qc)
    for _ in range(6):
        s.run_once()
        advance(qc, 30)
    base = datetime(2026, 12, 2, 15, 40, 0)
    assert [at for _, at, _ in runs(qc)] == [base + timedelta(seconds=30 * k) for k in (1, 2)]
    # the first run was at the start itself (15:40:00), before the task existed (15:40:00.5)
    assert qc.recurring_tasks()[0].schedule == "every 30 seconds from 2026-12-02T15:40:00Z, 3 times"


def test_a_next_run_function_task_fires_where_the_function_says(qc: Any) -> None:
    @qc.next_run_function("doubling")
    def doubling(previous: datetime) -> datetime:
        doubling.gap = getattr(doubling, "gap", 5) * 2  # type: ignore[attr-defined]
        return previous + timedelta(seconds=doubling.gap)  # type: ignore[attr-defined]

    qc.schedule("report", Report, quebec.NextRun("doubling", start=START + timedelta(seconds=10)))
    s = scheduler(qc)
    for _ in range(40):
        advance(qc, 1)
        s.run_once()
    base = datetime(2026, 12, 2, 15, 40, 10)
    assert [at for _, at, _ in runs(qc)] == [base, base + timedelta(seconds=10), base + timedelta(seconds=30)]


def test_static_tasks_are_synced_and_stale_static_rows_deleted(qc: Any) -> None:
    def static(*keys: str) -> StaticTasks:
        return StaticTasks("recurring.yml", [RecurringTask(k, "every hour", "Report", (1,)) for k in keys])

    qc.schedule("mine", Report, "every minute")
    scheduler(qc, static("a", "b")).run_once()
    assert [(t.key, t.static) for t in qc.recurring_tasks()] == [("a", True), ("b", True), ("mine", False)]
    before = {t.key: t.updated_at for t in qc.recurring_tasks()}
    advance(qc, 5)
    scheduler(qc, static("b", "c")).run_once()
    after = {t.key: t.updated_at for t in qc.recurring_tasks()}
    assert sorted(after) == ["b", "c", "mine"]
    assert after["b"] == before["b"]  # unchanged: its last change stays what it was
    assert qc.unschedule("b") is False  # static: it lives in the file
    assert qc.unschedule("mine") is True
    with pytest.raises(quebec.ConfigError, match="static task from recurring.yml"):
        qc.schedule("c", Report, "every minute")


def test_a_bad_task_in_the_file_is_one_sentence_and_the_others_run(
    qc: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "recurring.yml").write_text(
        "production:\n"
        "  good: {class: Report, schedule: every second}\n"
        "  typo: {class: Report, schedule: '*/5 * * * x'}\n"
        "  zone: {class: Report, schedule: '0 9 * * * Europe/Berln'}\n"
        "  zero: {class: Report, schedule: every 0 minutes}\n"
        "  prio: {class: Report, schedule: every minute, priority: high}\n"
        "  args: {class: Report, schedule: every minute, queue: [a]}\n"
        "  ghost: {class: NoSuchJob, schedule: every second}\n"
    )
    static = load_static(None, "production", cwd=str(tmp_path))
    assert [t.key for t in static.tasks or []] == ["good", "ghost"]
    expected = {
        "recurring.yml production.typo.schedule: schedule '*/5 * * * x' is not valid cron",
        "recurring.yml production.zone.schedule: 'Europe/Berln' is not a time zone",
        "recurring.yml production.zero.schedule: schedule 'every 0 minutes' has an interval of 0",
        "recurring.yml production.prio.priority: must be an integer",
        "recurring.yml production.args.queue: queue name ['a'] is not valid",
    }
    assert len(static.problems) == len(expected)
    for start, problem in zip(sorted(expected), sorted(static.problems), strict=True):
        assert problem.startswith(start), problem
        assert problem.endswith("this task is left out, the others run")
    s = scheduler(qc, static)
    with caplog.at_level(logging.WARNING, logger="quebec.scheduler"):
        s.run_once()
        advance(qc, 1)
        s.run_once()
        s.run_once()
    assert [k for k, _, _ in runs(qc)] == ["good"]
    skipped = [r.getMessage() for r in caplog.records if "ghost" in r.getMessage()]
    assert len(skipped) == 1 and "'NoSuchJob' is not registered in this process" in skipped[0]


def test_the_file_is_found_by_variable_then_default_names(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "recurring.yml").write_text("development:\n  a: {class: R, schedule: every hour}\n")
    assert load_static(None, "development", cwd=str(tmp_path)).path == "config/recurring.yml"
    (tmp_path / "recurring.yml").write_text("development:\n  b: {class: R, schedule: every hour}\n")
    assert [t.key for t in load_static(None, "development", cwd=str(tmp_path)).tasks or []] == ["b"]
    (tmp_path / "mine.yml").write_text("development:\n  c: {class: R, schedule: every hour}\n")
    assert [t.key for t in load_static("mine.yml", "development", cwd=str(tmp_path)).tasks or []] == ["c"]
    missing = load_static("nope.yml", "development", cwd=str(tmp_path))
    assert missing.tasks is None and "'nope.yml'" in missing.problems[0]
    wrong_env = load_static(None, "production", cwd=str(tmp_path))
    assert wrong_env.tasks is None and "no 'production' section" in wrong_env.problems[0]


def test_the_class_attribute_form_schedules_a_dynamic_task(qc: Any) -> None:
    @qc.register_job
    class Nightly(quebec.BaseClass):
        recurring_schedule = "every second"
        recurring_args = ("full",)

        def perform(self, mode: str) -> None:
            pass

    s = scheduler(qc)
    s.run_once()
    advance(qc, 1)
    s.run_once()
    (task,) = [t for t in qc.recurring_tasks() if t.key == Nightly.__qualname__]
    assert (task.static, task.arguments, task.schedule) == (False, ("full",), "every second")
    assert [k for k, _, _ in runs(qc)] == [Nightly.__qualname__]


def test_run_recurring_now_enqueues_off_schedule_and_is_false_for_an_unknown_key(qc: Any) -> None:
    qc.schedule("report", Report, "@yearly", args=[3])
    assert qc.run_recurring_now("report") is True
    advance(qc, 0.001)
    assert qc.run_recurring_now("report") is True  # each call is a fresh run
    assert qc.run_recurring_now("nope") is False
    assert [n for _, _, n in runs(qc)] == [1, 1]


def test_pause_operations_follow_the_wheel(make_qc: Callable[..., Any]) -> None:
    qc = make_qc()
    qc.register_job(Report)
    qc.schedule("report", Report, "every minute")
    for call in (qc.pause_recurring, qc.resume_recurring, qc.recurring_paused):
        with pytest.raises(RuntimeError, match="recurring_pause=True or set QUEBEC_RECURRING_PAUSE=true"):
            call("report")
    with pytest.raises(RuntimeError):
        qc.paused_recurring_tasks()
    on = make_qc(recurring_pause=True)
    for call in (on.pause_recurring, on.resume_recurring, on.recurring_paused):
        with pytest.raises(LookupError, match='No recurring task with key "nope"'):
            call("nope")
    assert on.paused_recurring_tasks() == []


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda qc: qc.schedule("", Report, "every minute"), "task key"),
        (lambda qc: qc.schedule("k", object, "every minute"), "job class"),
        (lambda qc: qc.schedule("k", Report, "*/5 * * * x"), "not valid cron"),
        (lambda qc: qc.schedule("k", Report, "0 9 * * * Mars/Olympus"), "not a time zone"),
        (lambda qc: qc.schedule("k", Report, 5), "a schedule is a string"),
        (lambda qc: qc.schedule("k", Report, "every minute", args="x"), "list of positional arguments"),
        (lambda qc: qc.schedule("k", Report, "every minute", priority="high"), "must be an integer"),
        (lambda qc: qc.schedule("k", Report, "every minute", queue="bad queue"), "queue name"),
    ],
)
def test_schedule_refuses_bad_input_in_one_sentence(qc: Any, call: Callable[[Any], Any], words: str) -> None:
    with pytest.raises(quebec.ConfigError) as err:
        call(qc)
    assert words in str(err.value) and "\n" not in str(err.value)
    assert qc.recurring_tasks() == []


def test_a_recurring_section_in_queue_yml_points_to_recurring_yml(tmp_path: Path) -> None:
    from quebec.config import load_settings

    (tmp_path / "queue.yml").write_text("development:\n  recurring:\n    a: {class: R, schedule: every hour}\n")
    with pytest.raises(quebec.ConfigError) as err:
        load_settings({}, {}, cwd=str(tmp_path))
    assert "queue.yml development.recurring: recurring tasks are read from recurring.yml" in str(err.value)


def test_a_failing_next_run_function_skips_its_task_only(qc: Any, caplog: pytest.LogCaptureFixture) -> None:
    @qc.next_run_function("broken")
    def broken(previous: datetime) -> datetime:
        raise RuntimeError("boom")

    qc.schedule("broken", Report, quebec.NextRun("broken", start=START - timedelta(seconds=10)))
    qc.schedule("fine", Report, "every second")
    s = scheduler(qc)
    with caplog.at_level(logging.WARNING, logger="quebec.scheduler"):
        s.run_once()
        advance(qc, 1)
        s.run_once()
    assert [k for k, _, _ in runs(qc)] == ["fine"]
    assert [r.getMessage() for r in caplog.records if "'broken'" in r.getMessage()] == [
        "recurring.skipped: recurring task 'broken' is skipped: its schedule raised RuntimeError('boom')"
    ]


def test_a_recurring_job_of_an_encrypted_class_is_sealed_like_any_enqueue(make_qc: Callable[..., Any]) -> None:
    from cryptography.fernet import Fernet

    qc = make_qc(encryption_key=Fernet.generate_key().decode())
    qc.db.clock = FrozenClock(START)

    @qc.register_job
    class Charge(quebec.BaseClass):
        encrypt = True
        seen: list[str] = []

        def perform(self, card: str) -> None:
            Charge.seen.append(card)

    qc.schedule("charge", Charge, "every second", args=["card-4111"])
    s = scheduler(qc)
    s.run_once()
    advance(qc, 1)
    s.run_once()
    assert qc.run_recurring_now("charge") is True
    j = qc.db.tables.jobs
    with qc.db.engine.connect() as conn:
        stored = [row[0] for row in conn.execute(select(j.c.arguments))]
    assert len(stored) == 2 and all("card-4111" not in a and "_quebec_encrypted" in a for a in stored)
    for execution in qc.drain_batch(2):
        execution.perform()
    assert Charge.seen == ["card-4111", "card-4111"]


def test_a_unique_jobs_run_is_skipped_while_its_earlier_run_waits(qc: Any) -> None:
    @qc.register_job
    class Sync(quebec.BaseClass):
        unique_for = True  # while the job is not finished

        def perform(self) -> None:
            pass

    qc.schedule("sync", Sync, "every second")
    s = scheduler(qc)
    for _ in range(3):
        s.run_once()
        advance(qc, 1)
    s.run_once()
    assert [at for _, at, _ in runs(qc)] == [datetime(2026, 12, 2, 15, 40, 1)]  # the first one still waits
    (execution,) = qc.drain_batch(5)
    execution.perform()
    advance(qc, 1)
    s.run_once()
    assert [at for _, at, _ in runs(qc)] == [datetime(2026, 12, 2, 15, 40, 1), datetime(2026, 12, 2, 15, 40, 4)]
