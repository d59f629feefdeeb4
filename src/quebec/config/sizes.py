"""Memory sizes for cgroup limits: `512M`, `2G`, `1.5GiB`, `268435456`, or `max` (no limit).

K/M/G/T and KiB/MiB/GiB/TiB are powers of 1024 (what the kernel's memory.max means by
them); KB/MB/GB/TB are powers of 1000, as the Rust Quebec reads them. A parsed size is a
byte count, or the string "max".
"""

from __future__ import annotations

import re
from typing import Literal

from quebec.errors import ConfigError

UNLIMITED: Literal["max"] = "max"
Size = int | Literal["max"]
_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "ki": 1024,
    "kib": 1024,
    "kb": 1000,
    "m": 1024**2,
    "mi": 1024**2,
    "mib": 1024**2,
    "mb": 1000**2,
    "g": 1024**3,
    "gi": 1024**3,
    "gib": 1024**3,
    "gb": 1000**3,
    "t": 1024**4,
    "ti": 1024**4,
    "tib": 1024**4,
    "tb": 1000**4,
}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([A-Za-z]*)")
# Below a few MiB a Python process cannot even start; such a limit is a typo (512 for 512M).
MINIMUM = 4 * 1024**2


def parse_size(value: object, label: str, *, minimum: int = MINIMUM) -> Size:
    """A byte count or "max" from a queue.yml / environment value; ConfigError naming it otherwise."""
    if isinstance(value, bool):
        raise _bad(value, label)
    if isinstance(value, int):
        count = value
    elif isinstance(value, str):
        text = value.strip()
        if text.lower() == UNLIMITED:
            return UNLIMITED
        match = _SIZE.fullmatch(text)
        if match is None or match[2].lower() not in _UNITS:
            raise _bad(value, label)
        count = round(float(match[1]) * _UNITS[match[2].lower()])
    else:
        raise _bad(value, label)
    if count < minimum:
        raise ConfigError(
            f"{label} is {value!r}, {count} bytes: too small for a Python process to start; "
            f"give a unit (e.g. 512M or 2G), or max for no limit"
        )
    return count


def optional_size(value: object, label: str) -> Size | None:
    """parse_size, with None (not set) kept as None."""
    return None if value is None else parse_size(value, label)


def optional_swap_size(value: object, label: str) -> Size | None:
    """memory_swap_max: a size as parse_size reads it, but 0 (no swap at all) and small values allowed."""
    return None if value is None else parse_size(value, label, minimum=0)


def show_size(size: Size) -> str:
    """A size the way an operator writes it: 256M, 2G, 1536K, 0, max."""
    if size == UNLIMITED:
        return UNLIMITED
    if size == 0:
        return "0"
    for unit, factor in (("T", 1024**4), ("G", 1024**3), ("M", 1024**2), ("K", 1024)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def _bad(value: object, label: str) -> ConfigError:
    return ConfigError(f"{label} must be a memory size such as 512M, 2G or 1.5GiB (or max for no limit), got {value!r}")
