"""`quebec.*` loggers, setup_logging(), and the job context every record carries during perform.

The library only creates loggers and never configures logging; `setup_logging()` is the one
place that calls `basicConfig`, for scripts and the CLI. Output formats: console (default),
json and logfmt, chosen by `fmt=` or QUEBEC_LOG_FORMAT.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO

from quebec.context import JobContext, job_context_var
from quebec.errors import ConfigError

ROOT = "quebec"
LOG_FORMATS = ("console", "json", "logfmt")

# Attributes every LogRecord has; anything else on a record came from `extra=` or our filter.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_CONTEXT = ("job_class", "job_id", "queue_name")


def get_logger(name: str = "") -> logging.Logger:
    """`quebec.<name>` (or `quebec` itself); `get_logger(__name__)` works from inside the package."""
    if not name or name == ROOT or name.startswith(ROOT + "."):
        return logging.getLogger(name or ROOT)
    return logging.getLogger(f"{ROOT}.{name}")


def current_job() -> JobContext | None:
    """The job running in this thread or task, or None outside one."""
    context = job_context_var.get()
    return context if context.job_class is not None else None


@contextmanager
def job_context(
    job_class: str,
    job_id: int | str,
    queue_name: str | None = None,
    *,
    jid: str | None = None,
    target: str | None = None,
) -> Iterator[JobContext]:
    """Stamp every record logged inside the block with the job, in this thread or task only,
    and publish it as `quebec.context.job_context_var` (one variable for both).

    The executor wraps perform in it. Threads started by the job do not inherit it (contextvars
    do not cross `threading.Thread`); asyncio tasks created inside the block do.
    """
    context = JobContext(jid=jid, queue=queue_name, target=target, job_id=job_id, job_class=job_class)
    token = job_context_var.set(context)
    try:
        yield context
    finally:
        job_context_var.reset(token)


class JobContextFilter(logging.Filter):
    """Sets `record.job_class`, `job_id` and `queue_name` from the current job (None outside one).

    Values passed in `extra=` win. Never drops a record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        context = job_context_var.get()  # the empty JobContext() outside a job: all None
        values = {"job_class": context.job_class, "job_id": context.job_id, "queue_name": context.queue}
        for name in _CONTEXT:
            if not hasattr(record, name):
                setattr(record, name, values[name])
        return True


class JobLoggerAdapter(logging.LoggerAdapter[logging.Logger]):
    """`self.logger` in a job: "[EmailJob 5lgij9p2vf75] message" under any handler, plus the
    job as record attributes for structured formatters."""

    def __init__(self, logger: logging.Logger, job_class: str, job_id: int | str) -> None:
        super().__init__(logger, {"job_class": job_class, "job_id": job_id})
        self._prefix = f"[{job_class} {job_id}] "

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        extra = dict(self.extra or {})
        extra.update(kwargs.get("extra") or {})
        extra["quebec_prefixed"] = True  # the console formatter must not add the job a second time
        kwargs["extra"] = extra
        return f"{self._prefix}{msg}", kwargs


# Looked up once: logging.getLogger takes the logging module's global lock, and every job
# gets an adapter over this logger.
_JOB_LOGGER = logging.getLogger(f"{ROOT}.job")


def job_logger(class_name: str, job_id: int | str) -> JobLoggerAdapter:
    return JobLoggerAdapter(_JOB_LOGGER, class_name, job_id)


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The job context and `extra=` values of a record, in a stable order."""
    fields = {name: getattr(record, name) for name in _CONTEXT if getattr(record, name, None) is not None}
    for key, value in vars(record).items():
        if key not in _STANDARD and key not in fields and key != "quebec_prefixed" and value is not None:
            fields[key] = value
    return fields


def _exception_text(formatter: logging.Formatter, record: logging.LogRecord) -> str:
    text = ""
    if record.exc_info:
        text = formatter.formatException(record.exc_info)
    elif record.exc_text:
        text = record.exc_text
    if record.stack_info:
        text = f"{text}\n{formatter.formatStack(record.stack_info)}".strip("\n")
    return text


class ConsoleFormatter(logging.Formatter):
    """2026-11-23T00:38:47.545979Z  INFO quebec.worker: [EmailJob 5lgij9p2vf75] message key=value"""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        fields = _fields(record)
        job_class, job_id = fields.pop("job_class", None), fields.pop("job_id", None)
        fields.pop("queue_name", None)
        if job_class is not None and not getattr(record, "quebec_prefixed", False):
            message = f"[{job_class} {job_id}] {message}"
        line = f"{_timestamp(record)} {record.levelname:>5} {record.name}: {message}"
        if fields:
            line += " " + " ".join(f"{key}={_logfmt_value(value)}" for key, value in fields.items())
        exception = _exception_text(self, record)
        return f"{line}\n{exception}" if exception else line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, then the job and `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update((k, v) for k, v in _fields(record).items() if k not in entry)
        if exception := _exception_text(self, record):
            entry["exception"] = exception
        try:
            return json.dumps(entry, default=str, ensure_ascii=False)
        except (TypeError, ValueError):  # e.g. a dict with tuple keys in extra=: keep the line, as text
            return json.dumps({k: v if isinstance(v, str) else repr(v) for k, v in entry.items()})


class LogfmtFormatter(logging.Formatter):
    """ts=… level=info logger=quebec.worker message="…" job_class=… (keys as in the wheel's logfmt)."""

    def format(self, record: logging.LogRecord) -> str:
        pairs: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        pairs.update((k, v) for k, v in _fields(record).items() if k not in pairs)
        if exception := _exception_text(self, record):
            pairs["exception"] = exception
        return " ".join(f"{key}={_logfmt_value(value)}" for key, value in pairs.items())


def _logfmt_value(value: Any) -> str:
    if value is True or value is False:
        return "true" if value else "false"
    text = str(value)
    if text and not any(c in text for c in ' ="\\\n\r\t'):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


_FORMATTERS: dict[str, type[logging.Formatter]] = {
    "console": ConsoleFormatter,
    "json": JsonFormatter,
    "logfmt": LogfmtFormatter,
}


def formatter_for(fmt: str | None = None) -> logging.Formatter:
    """The formatter for `fmt`, or for QUEBEC_LOG_FORMAT when None (console when unset)."""
    if fmt is None:
        fmt = os.environ.get("QUEBEC_LOG_FORMAT") or "console"
    chosen = _FORMATTERS.get(fmt.strip().lower())
    if chosen is None:
        raise ConfigError(
            f"log format {fmt!r} is not one of {', '.join(LOG_FORMATS)}; set QUEBEC_LOG_FORMAT "
            f"or pass fmt= with one of them"
        )
    return chosen()


def _level(level: int | str) -> int:
    if isinstance(level, int):
        return level
    named = logging.getLevelName(level.strip().upper())
    if not isinstance(named, int):
        raise ConfigError(f"log level {level!r} is not a level name; use DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return named


def setup_logging(level: int | str = logging.INFO, fmt: str | None = None, *, stream: TextIO | None = None) -> None:
    """Send all logging to one stream handler in the chosen format, replacing the root's handlers.

    Calling it again reconfigures rather than duplicating output. SQLAlchemy's loggers are held
    at WARNING or above: at DEBUG they would print every polling query.
    """
    numeric = _level(level)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter_for(fmt))
    handler.addFilter(JobContextFilter())
    logging.basicConfig(level=numeric, handlers=[handler], force=True)
    logging.getLogger("sqlalchemy").setLevel(max(numeric, logging.WARNING))
