"""The JSON kept in failed_executions.error, cut to ERROR_MAX_BYTES on every backend.

The wheel creates `error` as TEXT on MySQL/MariaDB: 65,535 bytes. A larger record
raised `Data too long` there (the wheel itself cuts it at that byte, leaving invalid
JSON). We cut before storing, on every backend alike, so a failure reads the same
wherever it is kept: the message and each traceback line are shortened with a marker,
middle traceback lines are dropped first, and the result is always valid JSON.
docs/limits.md lists the rule.

Reading is lenient: rows the wheel wrote may be cut mid-JSON or plain text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from quebec.types import ErrorInfo

ERROR_MAX_BYTES = 65_535  # a MySQL TEXT column
_MESSAGE_SHARE = 4  # a cut message gets at most a quarter of the record
_LINE_MAX = 2_000  # bytes of one traceback line, once the record has to be cut
_CLASS_MAX = 255


def error_json(error: ErrorInfo, limit: int = ERROR_MAX_BYTES) -> str:
    """The error as JSON text of at most `limit` bytes (ASCII: json escapes the rest)."""
    text = _dump(error.exception_class, error.message, error.backtrace)
    if len(text) <= limit:
        return text
    exception_class = _cut(error.exception_class, min(_CLASS_MAX, limit // _MESSAGE_SHARE))
    message = _cut(error.message, limit // _MESSAGE_SHARE)
    lines = [_cut(line, _LINE_MAX) for line in error.backtrace]
    room = limit - len(_dump(exception_class, message, []))
    text = _dump(exception_class, message, _fit_lines(lines, room))
    if len(text) > limit:  # only for a tiny limit: drop the traceback, then cut the message to fit
        message = _cut(message, limit - len(_dump(exception_class, "", [])))
        text = _dump(exception_class, message, [])
    return text


def read_error(text: str) -> dict[str, Any]:
    """The record as a dict; one that is not a JSON object (the wheel cuts a long one at
    64 KB mid-string, and writes some as plain text) comes back whole as its message."""
    try:
        record = json.loads(text)
    except ValueError:
        record = None
    if isinstance(record, dict):
        return record
    return {"exception_class": None, "message": text, "backtrace": []}


def _dump(exception_class: str, message: str, backtrace: Sequence[str]) -> str:
    return json.dumps({"exception_class": exception_class, "message": message, "backtrace": list(backtrace)})


def _size(value: str) -> int:
    """Bytes of `value` as a JSON string, quotes included."""
    return len(json.dumps(value))


def _cut(value: str, limit: int) -> str:
    """`value` shortened with a marker so that it takes at most `limit` bytes as JSON."""
    if _size(value) <= limit:
        return value
    marker = f" … [cut: {len(value)} characters in all]"
    room = limit - _size(marker) + 2
    # The longest prefix that fits: escapes make bytes per character vary, but never
    # fewer than one, so it is at most `room` characters long.
    low, high = 0, max(0, min(len(value), room))
    while low < high:
        mid = (low + high + 1) // 2
        if _size(value[:mid]) <= room:
            low = mid
        else:
            high = mid - 1
    return value[:low] + marker if room > 0 else ""


def _fit_lines(lines: list[str], room: int) -> list[str]:
    """The first line and as many of the last ones as fit in `room` bytes (where the
    error and the innermost frames are), with a marker for the ones dropped between."""
    sizes = [_size(line) + 2 for line in lines]  # ", " between items
    if sum(sizes) <= room or not lines:
        return lines
    marker_room = 64
    kept_tail: list[str] = []
    used = sizes[0] + marker_room
    for line, size in zip(reversed(lines[1:]), reversed(sizes[1:]), strict=True):
        if used + size > room:
            break
        kept_tail.append(line)
        used += size
    dropped = len(lines) - 1 - len(kept_tail)
    head = [lines[0]] if used <= room else []
    return [*head, f"… [{dropped} traceback lines cut]", *reversed(kept_tail)]
