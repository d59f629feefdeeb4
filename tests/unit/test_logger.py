"""quebec.logger: setup_logging formats, the job context filter, and self.logger's adapter."""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from quebec.errors import ConfigError
from quebec.logger import (
    current_job,
    get_logger,
    job_context,
    job_logger,
    setup_logging,
)

TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    sqlalchemy_level = logging.getLogger("sqlalchemy").level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("sqlalchemy").setLevel(sqlalchemy_level)


def configured(fmt: str | None = None, level: int | str = logging.DEBUG) -> io.StringIO:
    stream = io.StringIO()
    setup_logging(level, fmt, stream=stream)
    return stream


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_console_lines_carry_utc_time_level_logger_and_message() -> None:
    stream = configured("console")
    get_logger("worker").info("job.claimed %s", 3, extra={"process_id": 7})
    (line,) = lines(stream)
    assert line.endswith("  INFO quebec.worker: job.claimed 3 process_id=7")
    assert re.match(TIMESTAMP, line)


def test_job_logger_prefixes_class_name_and_job_id_once() -> None:
    stream = configured("console")
    job_logger("EmailJob", "5lgij9p2vf75").info("Sending email to %s", "a@b.c")
    with job_context("EmailJob", "5lgij9p2vf75"):
        job_logger("EmailJob", "5lgij9p2vf75").warning("again")
    assert lines(stream)[0].endswith("INFO quebec.job: [EmailJob 5lgij9p2vf75] Sending email to a@b.c")
    assert lines(stream)[1].endswith("WARNING quebec.job: [EmailJob 5lgij9p2vf75] again")


def test_job_logger_prefix_shows_under_a_handler_quebec_did_not_install(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO):
        job_logger("EmailJob", 42).info("hello", extra={"user_id": 9})
    (record,) = caplog.records
    assert record.getMessage() == "[EmailJob 42] hello"
    assert (record.job_class, record.job_id, record.user_id) == ("EmailJob", 42, 9)  # type: ignore[attr-defined]


def test_records_inside_a_job_context_carry_the_job_from_any_logger() -> None:
    stream = configured("console")
    with job_context("ReportJob", 12, "reports") as context:
        assert current_job() == context
        logging.getLogger("myapp.reports").info("building")
    logging.getLogger("myapp.reports").info("idle")
    assert current_job() is None
    assert lines(stream)[0].endswith("INFO myapp.reports: [ReportJob 12] building")
    assert lines(stream)[1].endswith("INFO myapp.reports: idle")


def test_job_context_does_not_leak_into_other_threads() -> None:
    seen: list[object] = []
    with job_context("ReportJob", 12):
        thread = threading.Thread(target=lambda: seen.append(current_job()))
        thread.start()
        thread.join()
    assert seen == [None]


def test_nested_job_contexts_restore_the_outer_one() -> None:
    with job_context("Outer", 1):
        with job_context("Inner", 2):
            assert current_job() is not None and current_job().job_class == "Inner"  # type: ignore[union-attr]
        assert current_job() is not None and current_job().job_class == "Outer"  # type: ignore[union-attr]


def test_json_format_is_one_object_per_line_with_job_fields() -> None:
    stream = configured("json")
    with job_context("EmailJob", 5, "mail"):
        get_logger("worker").info('job "started"', extra={"event": "job.started"})
        try:
            raise ValueError("boom")
        except ValueError:
            get_logger("worker").exception("job.failed")
    first, second = (json.loads(line) for line in lines(stream))
    assert first == {
        "ts": first["ts"],
        "level": "info",
        "logger": "quebec.worker",
        "message": 'job "started"',
        "job_class": "EmailJob",
        "job_id": 5,
        "queue_name": "mail",
        "event": "job.started",
    }
    assert second["level"] == "error"
    assert second["exception"].endswith("ValueError: boom")


def test_json_format_renders_values_json_cannot_hold_as_text() -> None:
    stream = configured("json")
    get_logger("x").info("odd", extra={"tags": {"a"}, "kind": set})
    entry = json.loads(lines(stream)[0])
    assert (entry["tags"], entry["kind"]) == ("{'a'}", "<class 'set'>")


def test_json_format_survives_extra_values_json_cannot_encode() -> None:
    stream = configured("json")
    get_logger("x").info("odd", extra={"grid": {(0, 1): "a"}})
    assert json.loads(lines(stream)[0])["grid"] == "{(0, 1): 'a'}"


def test_logfmt_format_quotes_values_with_spaces_quotes_or_newlines() -> None:
    stream = configured("logfmt")
    with job_context("EmailJob", "abc"):
        get_logger("worker").warning('say "hi"\nthere', extra={"ok": True, "n": 3, "empty": ""})
    (line,) = lines(stream)
    assert re.fullmatch(
        rf"ts={TIMESTAMP} level=warning logger=quebec\.worker message=\"say \\\"hi\\\"\\nthere\" "
        r"job_class=EmailJob job_id=abc ok=true n=3 empty=\"\"",
        line,
    )


def test_format_comes_from_quebec_log_format_when_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUEBEC_LOG_FORMAT", "json")
    stream = configured()
    get_logger("worker").info("hello")
    assert json.loads(lines(stream)[0])["message"] == "hello"


def test_an_unknown_format_is_a_config_error_listing_the_choices() -> None:
    with pytest.raises(ConfigError, match="'yaml' is not one of console, json, logfmt"):
        configured("yaml")


def test_levels_may_be_given_by_name() -> None:
    stream = configured("console", level="warning")
    get_logger("worker").info("hidden")
    get_logger("worker").warning("shown")
    assert len(lines(stream)) == 1
    with pytest.raises(ConfigError, match="'LOUD' is not a level name"):
        configured("console", level="LOUD")


def test_calling_setup_logging_twice_does_not_duplicate_output() -> None:
    configured("console")
    stream = configured("console")
    get_logger("worker").info("once")
    assert len(lines(stream)) == 1
    assert len(logging.getLogger().handlers) == 1


def test_debug_does_not_turn_on_sqlalchemy_query_logging() -> None:
    configured("console", level=logging.DEBUG)
    assert logging.getLogger("sqlalchemy.engine.Engine").getEffectiveLevel() == logging.WARNING


def test_get_logger_names_everything_under_quebec() -> None:
    assert get_logger().name == "quebec"
    assert get_logger("worker").name == "quebec.worker"
    assert get_logger("quebec.engine.worker").name == "quebec.engine.worker"


def test_importing_the_module_configures_nothing() -> None:
    code = "import logging, quebec.logger; root = logging.getLogger(); print(len(root.handlers), root.level)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": ":".join(p for p in sys.path if p)},
    )
    assert result.stdout.split() == ["0", str(logging.WARNING)]
