"""What the CLI prints: tables sized to the terminal, JSON for scripts, ages and times.

Tables go to stdout; so does JSON, alone (nothing else is printed with --json, so
`| jq` always parses). Times are UTC, the clock every Quebec table is written in.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

_GAP = "  "
_MIN_FLEX = 8  # a column that gives up width keeps at least this many characters


@dataclass(frozen=True, slots=True)
class Column:
    title: str
    right: bool = False  # numbers: aligned right
    flex: bool = False  # may be cut to fit the terminal (names, errors)


def emit_json(value: Any) -> None:
    json.dump(value, sys.stdout, default=_json_default)
    sys.stdout.write("\n")


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, set | frozenset | tuple):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def iso(value: datetime | None) -> str | None:
    """A stored (naive UTC) time as ISO 8601 with its offset: `2026-12-02T15:50:12+00:00`."""
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def table(columns: Sequence[Column], rows: Iterable[Sequence[object]], *, width: int | None = None) -> None:
    """Print rows under a header, each column as wide as its widest cell; when the table is
    wider than the terminal, the flex columns are cut (with …), the widest first."""
    cells = [[_text(value) for value in row] for row in rows]
    widths = [max([len(c.title)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    room = (width or shutil.get_terminal_size((120, 24)).columns) - len(_GAP) * (len(columns) - 1)
    while sum(widths) > room:
        flexible = [i for i, c in enumerate(columns) if c.flex and widths[i] > max(_MIN_FLEX, len(c.title))]
        if not flexible:
            break
        widest = max(flexible, key=lambda i: widths[i])
        widths[widest] = max(_MIN_FLEX, len(columns[widest].title), widths[widest] - (sum(widths) - room))
    lines = [[c.title for c in columns], *cells]
    for line in lines:
        out = [_fit(text, widths[i], columns[i].right) for i, text in enumerate(line)]
        print(_GAP.join(out).rstrip())


def _text(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return " ".join(str(value).split())  # one line per row, whatever a message holds


def _fit(text: str, width: int, right: bool) -> str:
    if len(text) > width:
        text = text[: width - 1] + "…"
    return text.rjust(width) if right else text.ljust(width)


def age(seconds: float | None) -> str:
    """3s, 4m12s, 2h05m, 3d04h: how long ago, at a glance."""
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def seconds_between(later: datetime, earlier: datetime | None) -> float | None:
    return None if earlier is None else (later - earlier).total_seconds()


def error_line(error: dict[str, Any] | None) -> str:
    """`ValueError: broken 2` from a stored failure record."""
    if not error:
        return ""
    return f"{error.get('exception_class', '')}: {error.get('message', '')}"
