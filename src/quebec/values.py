"""JSON for the values JSON has no type for: the one codec arguments and results share.

datetime, date, time, timedelta, UUID and Decimal travel as tagged dicts
`{"_quebec_type": kind, "value": ...}` (docs/arguments.md says why); anything else is
refused by the encoder. Decoding revives the tags and leaves unknown kinds as dicts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

TYPE_TAG = "_quebec_type"


def _seconds(value: timedelta) -> int | float:
    micros = value // timedelta(microseconds=1)
    return micros // 1_000_000 if micros % 1_000_000 == 0 else micros / 1_000_000


def _timedelta(value: int | float) -> timedelta:
    # Exact to the microsecond within ±2**33 s (272 years); whole seconds are exact at any size.
    return timedelta(seconds=value)


# kind, Python type, encode, revive. datetime precedes date: a datetime is a date.
_CODECS: tuple[tuple[str, type, Callable[[Any], Any], Callable[[Any], Any]], ...] = (
    ("datetime", datetime, datetime.isoformat, datetime.fromisoformat),
    ("date", date, date.isoformat, date.fromisoformat),
    ("time", time, time.isoformat, time.fromisoformat),
    ("timedelta", timedelta, _seconds, _timedelta),
    ("uuid", UUID, str, UUID),
    ("decimal", Decimal, str, Decimal),
)
_REVIVERS = {kind: revive for kind, _, _, revive in _CODECS}


def encodes_tagged(value: Any) -> bool:
    return any(isinstance(value, python_type) for _, python_type, _, _ in _CODECS)


def encode_value(value: Any) -> dict[str, Any]:
    """json.dumps' `default=`: called only for values JSON has no type for."""
    for kind, python_type, encode, _ in _CODECS:
        if isinstance(value, python_type):
            return {TYPE_TAG: kind, "value": encode(value)}
    raise TypeError(f"{type(value).__qualname__} is not JSON serialisable")


def revive(obj: dict[str, Any]) -> Any:
    """json.loads' `object_hook`. Unknown kinds stay dicts, so a newer writer's tags survive."""
    if len(obj) != 2 or TYPE_TAG not in obj or "value" not in obj:
        return obj
    kind, value = obj[TYPE_TAG], obj["value"]
    revive = _REVIVERS.get(kind)
    if revive is None:
        return obj
    wanted = (int, float) if kind == "timedelta" else (str,)
    if not isinstance(value, wanted) or isinstance(value, bool):
        raise ValueError(f"tagged argument {obj!r} is malformed; the job cannot be performed")
    try:
        return revive(value)
    except (ValueError, ArithmeticError) as exc:  # decimal.InvalidOperation is arithmetic
        raise ValueError(f"tagged argument {obj!r} is malformed ({exc}); the job cannot be performed") from exc


def dumps(value: Any) -> str:
    """`value` as JSON text, tagged values encoded; TypeError/ValueError for what JSON cannot hold."""
    return json.dumps(value, default=encode_value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def loads(text: str) -> Any:
    return json.loads(text, object_hook=revive)
