"""Bad input, tried as a careful user would: each mistake is refused with ONE sentence that names
the option, the value and the fix — no traceback text, no SQL, no silent default — and nothing
is inserted. Where the message differs per backend (sizes), the test runs on every backend."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import quebec
from quebec import options
from quebec.errors import ArgumentsTooLarge, ConfigError, EnqueueError, EnqueueOptionError, InvalidIdentifier
from quebec.store import queries

INT_RANGE = "must be an int from -2147483648 to 2147483647 (lower runs first)"


def assert_one_sentence(message: str, *fragments: str) -> None:
    assert "\n" not in message, message
    assert not re.search(r"[.!?]\s+[A-Z]", message), f"more than one sentence: {message}"
    assert "Traceback" not in message and "[SQL:" not in message and "sqlalchemy" not in message.lower(), message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


class Report(quebec.BaseClass):
    def perform(self, *args: Any, **kwargs: Any) -> None:
        pass


def _class_with_priority() -> Any:
    class Ranked(quebec.BaseClass):
        priority = 2**31

        def perform(self) -> None:
            pass

    return Ranked


# (call, error class, fragments of its message): each call is a mistake made at the boundary.
OPTION_CASES: dict[str, tuple[Callable[[], Any], type[Exception], tuple[str, ...]]] = {
    "priority bool": (lambda: Report.set(priority=True), EnqueueOptionError, ("priority", INT_RANGE, "got True")),
    "priority str": (lambda: Report.set(priority="1"), EnqueueOptionError, ("priority", "got '1' (a str)")),
    "priority float": (lambda: Report.set(priority=1.5), EnqueueOptionError, ("priority", "got 1.5 (a float)")),
    "priority > int32": (lambda: Report.set(priority=2**31), EnqueueOptionError, (INT_RANGE, "got 2147483648")),
    "priority < int32": (lambda: Report.set(priority=-(2**31) - 1), EnqueueOptionError, ("got -2147483649",)),
    "class priority > int32": (_class_with_priority, ConfigError, ("Ranked.priority", INT_RANGE, "2147483648")),
    "wait negative": (lambda: Report.set(wait=-5), EnqueueOptionError, ("wait", "must be ≥ 0 seconds, got -5")),
    "wait negative timedelta": (
        lambda: Report.set(wait=timedelta(seconds=-5)),
        EnqueueOptionError,
        ("wait", "must be ≥ 0 seconds", "timedelta(days=-1, seconds=86395)"),
    ),
    "wait inf": (lambda: Report.set(wait=float("inf")), EnqueueOptionError, ("must be a finite number", "inf")),
    "wait nan": (lambda: Report.set(wait=float("nan")), EnqueueOptionError, ("must be a finite number", "nan")),
    "wait huge": (lambda: Report.set(wait=1e300), EnqueueOptionError, ("1e+300", "later than 9999-12-31")),
    "wait huge int": (lambda: Report.set(wait=10**400), EnqueueOptionError, ("later than 9999-12-31", "characters")),
    "wait str": (lambda: Report.set(wait="5s"), EnqueueOptionError, ("must be seconds", "'5s'")),
    "wait and wait_until": (
        lambda: Report.set(wait=5, wait_until=datetime.now(UTC)),
        EnqueueOptionError,
        ("got both wait=5 and wait_until=", "pass one of them"),
    ),
    "wait_until date": (
        lambda: Report.set(wait_until=date(2030, 1, 1)),  # type: ignore[arg-type]
        EnqueueOptionError,
        ("must be a datetime", "datetime.date(2030, 1, 1)", "datetime.combine"),
    ),
    "wait_until before year 1000": (
        lambda: Report.set(wait_until=datetime(999, 1, 1, tzinfo=UTC)),
        EnqueueOptionError,
        ("must be between 1000-01-01 and 9999-12-31",),
    ),
    "wait_until past year 9999 once in UTC": (
        lambda: Report.set(wait_until=datetime.max.replace(tzinfo=timezone(timedelta(hours=-5)))),
        EnqueueOptionError,
        ("must be between 1000-01-01 and 9999-12-31",),
    ),
    "queue empty": (lambda: Report.set(queue=""), InvalidIdentifier, ("Report.set(queue=…)", "queue name ''")),
    "queue with a space": (lambda: Report.set(queue="a b"), InvalidIdentifier, ("queue name 'a b'", "e.g. 'default'")),
    "queue not a str": (lambda: Report.set(queue=5), InvalidIdentifier, ("queue name 5",)),  # type: ignore[arg-type]
    "unknown option when chained": (
        lambda: Report.set(queue="a").set(prio=1),
        EnqueueOptionError,
        ("unknown option 'prio'", "wait, wait_until, queue, priority"),
    ),
    "_scheduled_at not a time": (
        lambda: Report.build(_scheduled_at="soon"),
        EnqueueOptionError,
        ("_scheduled_at", "a Unix timestamp", "'soon'"),
    ),
    "_scheduled_at out of range": (lambda: Report.build(_scheduled_at=1e20), EnqueueOptionError, ("1e+20",)),
    "_queue empty": (lambda: Report.build(1, _queue=""), InvalidIdentifier, ("_queue", "queue name ''")),
    "_priority bool": (lambda: Report.build(1, _priority=False), EnqueueOptionError, ("_priority", "got False")),
}


@pytest.mark.parametrize("case", OPTION_CASES)
def test_a_bad_enqueue_option_is_one_sentence_naming_option_and_value(case: str) -> None:
    call, error, fragments = OPTION_CASES[case]
    with pytest.raises(error) as caught:
        call()
    assert_one_sentence(str(caught.value), *fragments)
    if error is EnqueueOptionError:  # what enqueue raises, and a ValueError (a bad value)
        assert isinstance(caught.value, EnqueueError) and isinstance(caught.value, ValueError)


def test_every_bad_option_reaches_no_table_on_any_backend(qc: quebec.Quebec) -> None:
    qc.register_job(Report)
    for case, (call, error, _) in OPTION_CASES.items():
        with pytest.raises(error):
            made = call()
            if isinstance(made, quebec.ActiveJob):
                qc.perform_all_later([made])
            elif made is not None and hasattr(made, "perform_later"):
                made.perform_later(case)
    with pytest.raises(InvalidIdentifier, match="queue name ''"):
        Report.perform_later(qc, 1, _queue="")
    assert sum(qc.db.read(queries.state_counts).values()) == 0


def test_an_empty_queue_is_refused_not_replaced_by_the_class_default() -> None:
    # queue="" used to enqueue on queue_as ("default") without a word.
    with pytest.raises(InvalidIdentifier):
        Report.set(queue="")
    assert Report.set(queue="mail").options.queue == "mail"


def test_chained_set_replaces_wait_with_wait_until_and_keeps_the_rest() -> None:
    at = datetime(2030, 1, 1, tzinfo=UTC)
    chained = Report.set(wait=5, priority=3).set(wait_until=at)
    assert (chained.options.wait, chained.options.wait_until, chained.options.priority) == (None, at, 3)


def test_the_wheels_scheduled_at_takes_a_unix_timestamp_or_a_datetime() -> None:
    at = datetime(2030, 1, 1, 12, tzinfo=UTC)
    assert Report.build(_scheduled_at=at.timestamp()).options.wait_until == at
    assert Report.build(_scheduled_at=at).options.wait_until == at


def test_a_naive_wait_until_is_read_as_utc_and_said_so_once_per_process(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(options._NAIVE, "warned", False)
    naive = datetime(2030, 1, 1, 9, 30)
    with caplog.at_level(logging.WARNING, logger="quebec"):
        first = Report.set(wait_until=naive)
        Report.set(wait_until=naive + timedelta(hours=1))
        Report.set(wait_until=datetime(2030, 1, 1, 9, 30, tzinfo=UTC))
    assert first.options.wait_until == naive.replace(tzinfo=UTC)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert_one_sentence(warnings[0], "Report.set(wait_until=…)", "read as UTC", "2030-01-01 09:30:00 UTC")


# --- sizes: the one message that differs per backend --------------------------------------------


def test_arguments_larger_than_the_backend_holds_are_refused_naming_size_and_limit(
    qc: quebec.Quebec, backend: str
) -> None:
    qc.register_job(Report)
    most, why = qc.db.dialect.arguments_limit or (0, "")
    expected = {
        "sqlite": (1_000_000_000, "SQLite's SQLITE_MAX_LENGTH"),
        "postgresql": (2**30 - 1, "PostgreSQL's limit on one text value"),
    }
    if backend in expected:
        # Too large to build in a test: the limits read at connect are checked instead, and
        # the refusal itself below on MySQL and on a SQLite file with a lowered limit.
        assert (most, why) == expected[backend]
        return
    # MySQL: the column our create_tables made (TEXT or wider) or max_allowed_packet.
    assert "arguments column" in why or "max_allowed_packet" in why
    with pytest.raises(ArgumentsTooLarge) as caught:
        Report.perform_later("x" * most)
    assert_one_sentence(str(caught.value), f"({most:,} bytes)", why, "pass a reference to large data")
    assert sum(qc.db.read(queries.state_counts).values()) == 0


def test_a_database_whose_arguments_column_is_text_is_read_at_connect(make_qc: Any, backend: str) -> None:
    # The Rust wheel creates jobs.arguments as TEXT (65,535 bytes on MySQL): the limit comes
    # from the table, whatever type our own create_tables gives new ones.
    if backend != "mysql":
        pytest.skip("only MySQL's TEXT column is smaller than the arguments a job may carry")
    first = make_qc()
    jobs = first.db.tables.jobs.name
    with first.db.engine.begin() as conn:
        conn.exec_driver_sql(f"ALTER TABLE {jobs} MODIFY arguments TEXT")
    qc = make_qc()
    qc.register_job(Report)
    assert qc.db.dialect.arguments_limit == (65_535, f"the {jobs}.arguments column (TEXT)")
    Report.perform_later("x" * 60_000)
    with pytest.raises(ArgumentsTooLarge) as caught:
        Report.perform_later("x" * 70_000)
    assert_one_sentence(
        str(caught.value), "the arguments of Report take 70,", f"more than the {jobs}.arguments column (TEXT)"
    )
    assert sum(qc.db.read(queries.state_counts).values()) == 1


def test_sqlite_refuses_arguments_past_its_length_limit_in_one_sentence(tmp_path: Path) -> None:
    import sqlite3

    from sqlalchemy import event

    qc = quebec.Quebec(f"sqlite:///{tmp_path}/small.db?mode=rwc")
    try:
        event.listen(qc.db.engine, "connect", lambda conn, _: conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 100_000))
        qc.db.dispose()
        qc.db.connect()
        qc.register_job(Report)
        Report.perform_later("x" * 90_000)
        with pytest.raises(ArgumentsTooLarge) as caught:  # was: DataError "string or blob too big"
            Report.perform_later("x" * 100_000)
        assert_one_sentence(str(caught.value), "more than SQLite's SQLITE_MAX_LENGTH allows (100,000 bytes)")
    finally:
        qc.close()


def test_a_bulk_enqueue_larger_than_one_packet_is_split_into_statements_that_fit(qc: quebec.Quebec) -> None:
    # 350 jobs of 50 KB are 17.5 MB: one INSERT of them outgrew MariaDB's 16 MB max_allowed_packet.
    qc.register_job(Report)
    enqueued = qc.perform_all_later([Report.build("y" * 50_000) for _ in range(350)])
    assert len({job.id for job in enqueued}) == 350
    assert qc.db.read(queries.state_counts)[quebec.types.JobState.READY] == 350


# --- operations ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "fragments"),
    [
        ({"batch_size": 0}, ("batch_size=…) must be an integer from 1 to 10,000, got 0",)),
        ({"batch_size": -1}, ("got -1",)),
        ({"batch_size": True}, ("got True",)),
        ({"batch_size": 10**6}, ("got 1000000",)),
        ({"finished_before": "yesterday"}, ("finished_before=…) must be a datetime", "'yesterday'")),
        ({"finished_before": 1700000000}, ("must be a datetime", "1700000000")),
    ],
)
def test_clear_finished_jobs_refuses_sizes_that_loop_forever_and_non_datetimes(
    tmp_path: Path, kwargs: dict[str, Any], fragments: tuple[str, ...]
) -> None:
    # batch_size=0 used to loop forever at 100% CPU.
    qc = quebec.Quebec(f"sqlite:///{tmp_path}/clear.db?mode=rwc")
    try:
        with pytest.raises(ConfigError) as caught:
            qc.clear_finished_jobs(**kwargs)
        assert_one_sentence(str(caught.value), *fragments)
    finally:
        qc.close()


# --- settings: every one bounded, checked at load time -------------------------------------------

# (keyword arguments, environment, queue.yml text, fragments of the message)
SETTING_CASES: dict[str, tuple[dict[str, Any], dict[str, str], str | None, tuple[str, ...]]] = {
    "threads 0": ({}, {"QUEBEC_WORKER_THREADS": "0"}, None, ("QUEBEC_WORKER_THREADS", "from 1 to 1,000, got '0'")),
    "threads 5000": ({"worker_threads": 5000}, {}, None, ("keyword argument worker_threads", "got 5000")),
    "yml threads": ({}, {}, "workers:\n  - threads: 2000\n", ("queue.yml workers[0].threads", "from 1 to 1,000")),
    "yml processes": ({}, {}, "workers:\n  - processes: 1000\n", ("workers[0].processes", "from 1 to 256")),
    "poll 0.1 ms": ({"worker_polling_interval": 0.0001}, {}, None, ("worker_polling_interval", "at least 0.001s")),
    "poll 2 days": ({}, {"QUEBEC_WORKER_POLLING_INTERVAL": "2d"}, None, ("at most 1 day (86400s)", "got '2d'")),
    "heartbeat 2 hours": ({"process_heartbeat_interval": "2h"}, {}, None, ("at most 1 hour (3600s)",)),
    "cleanup after 1e300 s": ({"clear_finished_jobs_after": 1e300}, {}, None, ("at most 100 years",)),
    "shutdown forever": ({}, {"QUEBEC_SHUTDOWN_TIMEOUT": "30d"}, None, ("QUEBEC_SHUTDOWN_TIMEOUT", "at most 1 day")),
    "batch 100000": ({}, {"QUEBEC_DISPATCHER_BATCH_SIZE": "100000"}, None, ("from 1 to 10,000",)),
    "pool 5000": ({"db_max_connections": 5000}, {}, None, ("db_max_connections", "from 1 to 1,000")),
    "connect timeout 0": ({}, {"QUEBEC_DB_CONNECT_TIMEOUT": "0"}, None, ("QUEBEC_DB_CONNECT_TIMEOUT", "> 0")),
    "rss negative": ({"worker_max_rss_mb": -1}, {}, None, ("worker_max_rss_mb", "from 0 to 1,048,576")),
    "queue limit 0": ({"experimental_queue_concurrency": {"a": 0}}, {}, None, ("['a']", "from 1 to 10,000")),
    "no queues": ({"queues": []}, {}, None, ("keyword argument queues names no queue", "use '*'")),
    "name with a space": ({"name": "my app"}, {}, None, ("keyword argument name", "NOTIFY channel", "'my app'")),
    "name too long": ({}, {"QUEBEC_NAME": "n" * 64}, None, ("QUEBEC_NAME", "1-63")),
    "prefix only underscores": ({"table_name_prefix": "__"}, {}, None, ("table_name_prefix is invalid", "'__'")),
    "prefix from yml": ({}, {}, "table_name_prefix: a-b\n", ("queue.yml table_name_prefix is invalid", "'a-b'")),
    "sslmode allow": ({}, {"QUEBEC_SSLMODE": "allow"}, None, ("QUEBEC_SSLMODE 'allow' is not supported",)),
}


@pytest.mark.parametrize("case", SETTING_CASES)
def test_a_bad_setting_is_one_sentence_naming_where_it_came_from(case: str, tmp_path: Path) -> None:
    from quebec.config import load_settings

    kwargs, env, yml, fragments = SETTING_CASES[case]
    if yml is not None:
        (tmp_path / "queue.yml").write_text(yml)
    with pytest.raises(ConfigError) as caught:
        load_settings(kwargs, env, cwd=str(tmp_path))
    assert_one_sentence(str(caught.value), *fragments)


@pytest.mark.parametrize(
    ("run", "fragments"),
    [
        ({"spawn": []}, ("spawn= names no component, so nothing would run",)),
        ({"spawn": "worker"}, ("spawn='worker' must be a list of component names, e.g. spawn=['worker']",)),
        ({"spawn": ["worker", "sheduler"]}, ("names unknown components ['sheduler']",)),
        ({"spawn": [1]}, ("spawn= must be a list of component names",)),
        ({"threads": 0}, ("threads= must be an integer from 1 to 1,000, got 0",)),
        ({"threads": -1}, ("got -1",)),
    ],
)
def test_a_worker_with_nothing_to_run_refuses_to_start(
    tmp_path: Path, run: dict[str, Any], fragments: tuple[str, ...]
) -> None:
    qc = quebec.Quebec(f"sqlite:///{tmp_path}/run.db?mode=rwc")
    try:
        with pytest.raises(ConfigError) as caught:
            qc.start(**run)  # spawn=[] used to start a process that ran nothing, silently
        assert_one_sentence(str(caught.value), *fragments)
    finally:
        qc.close()


def test_an_unknown_quebec_variable_is_warned_about_naming_the_closest_one(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from quebec.config import load_settings, sources

    monkeypatch.setattr(sources._WARNED, "names", set())
    env = {"QUEBEC_WORKR_THREADS": "4", "QUEBEC_DB_MIN_CONNECTIONS": "2", "QUEBEC_ZZZ": "1", "QUEBEC_ENV": "x"}
    with caplog.at_level(logging.WARNING, logger="quebec.config"):
        settings = load_settings({}, env, cwd=str(tmp_path))
        load_settings({}, env, cwd=str(tmp_path))  # once per process, not per Quebec()
    assert settings.worker_threads == 3  # the typo is not read, and now says so
    assert [r.getMessage() for r in caplog.records] == [
        "environment variable QUEBEC_DB_MIN_CONNECTIONS is read by the Rust Quebec but has no effect in this version",
        "environment variable QUEBEC_WORKR_THREADS is not a Quebec setting and is ignored; "
        "did you mean QUEBEC_WORKER_THREADS?",
        "environment variable QUEBEC_ZZZ is not a Quebec setting and is ignored; "
        "docs/configuration.md lists the variables Quebec reads",
    ]


# --- URLs ----------------------------------------------------------------------------------------


def test_sslmode_allow_in_the_url_is_refused_with_the_keywords_sentence() -> None:
    with pytest.raises(ConfigError) as in_url:
        quebec.Quebec("postgresql://app@127.0.0.1:1/db?sslmode=allow")
    with pytest.raises(ConfigError) as as_keyword:
        quebec.Quebec("postgresql://app@127.0.0.1:1/db", sslmode="allow")
    assert str(in_url.value).replace("the database URL's sslmode", "") == str(as_keyword.value).replace(
        "keyword argument sslmode", ""
    )
    assert_one_sentence(str(in_url.value), "the database URL's sslmode 'allow' is not supported", "'require'")


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("?foo=1", "has foo=, which Quebec does not read; the only parameters are mode="),
        ("?mode=rwx", "has mode='rwx'; use one of rwc, rw, ro, memory"),
        ("?mode=rwc&cache=everything", "cache='everything'"),
    ],
)
def test_a_sqlite_url_parameter_quebec_does_not_read_is_refused(tmp_path: Path, query: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        quebec.Quebec(f"sqlite:///{tmp_path}/x.db{query}")
    assert_one_sentence(str(caught.value), fragment)
    assert not (tmp_path / "x.db").exists()


def test_sqlite_mode_ro_is_honoured_enqueue_and_the_worker_refuse_in_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    writer = quebec.Quebec(f"sqlite:///{path}?mode=rwc")
    writer.register_job(Report)
    first = Report.perform_later(writer, 1)
    writer.close()
    before = path.read_bytes()
    qc = quebec.Quebec(f"sqlite:///{path}?mode=ro")
    try:
        assert qc.get_job(first.id).state == "ready"  # type: ignore[arg-type, union-attr]
        with pytest.raises(quebec.QuebecError) as enqueue:  # it used to write the file anyway
            Report.perform_later(qc, 2)
        assert_one_sentence(str(enqueue.value), "enqueue_many cannot write to", "which is read-only")
        with pytest.raises(quebec.QuebecError) as start:
            qc.start(spawn=["worker"])
        assert_one_sentence(str(start.value), "cannot write to", "read-only", "open it read-write")
    finally:
        qc.close()
    assert path.read_bytes() == before


@pytest.mark.parametrize("url", ["sqlite:///{dir}/mem.db?mode=memory", "sqlite:////:memory:", "sqlite::memory:"])
def test_sqlite_in_memory_urls_write_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.chdir(tmp_path)
    qc = quebec.Quebec(url.format(dir=tmp_path))
    try:
        qc.register_job(Report)
        assert Report.perform_later(qc, 1).id == 1
    finally:
        qc.close()
    assert list(tmp_path.iterdir()) == []  # mode=memory used to create mem.db


# --- the store boundary --------------------------------------------------------------------------


def test_a_value_the_database_refuses_is_a_quebec_error_without_sql(qc: quebec.Quebec, backend: str) -> None:
    # Past the option checks (a store function called directly): each backend refused with its
    # own raw error (OverflowError, psycopg NumericValueOutOfRange, pymysql DataError + the SQL).
    from quebec.errors import StoreError
    from quebec.store import jobs
    from quebec.types import NewJob

    job = NewJob(
        queue_name="default",
        class_name="Report",
        arguments="[]",
        priority=2**70,
        active_job_id="abc123",
        scheduled_at=qc.db.clock.now(),
    )
    with pytest.raises(StoreError) as caught:
        qc.db.transact(jobs.enqueue_many, [job])
    message = str(caught.value)
    assert_one_sentence(message, "enqueue_many on", backend if backend != "postgresql" else "postgresql")
    assert "INSERT" not in message and caught.value.__cause__ is None
    assert caught.value.original is not None  # type: ignore[attr-defined]


def test_connections_time_out_on_every_backend(make_qc: Any, backend: str) -> None:
    from sqlalchemy import event

    qc = make_qc(db_connect_timeout=3)
    seen: list[dict[str, Any]] = []
    event.listen(qc.db.engine, "do_connect", lambda _d, _r, _a, params: seen.append(dict(params)))
    qc.db.dispose()
    with qc.db.engine.connect() as conn:
        if backend == "sqlite":  # no server: the timeout is how long a write waits for the lock
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 3000
    assert seen and seen[0]["timeout" if backend == "sqlite" else "connect_timeout"] == 3
    default = make_qc()
    assert default.db.connect_timeout == (5.0 if backend == "sqlite" else 10.0)  # libpq's own default: forever
