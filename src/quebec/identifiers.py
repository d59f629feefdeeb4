"""Validation of names that end up in SQL or in URLs.

Table prefixes are pasted into table names, so they must be plain identifiers;
queue names are always bound as values but are validated so that a typo shows
up at enqueue time rather than as a queue nobody consumes.
"""

from __future__ import annotations

import re

from quebec.errors import InvalidIdentifier

DEFAULT_PREFIX = "solid_queue"
_PREFIX = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,40}$")
_QUEUE = re.compile(r"^[A-Za-z0-9_.:\-]{1,100}$")
_FORCED_QUEUE_HOSTILE = re.compile(r"[/\\?#%*\s]")


def table_prefix(value: str | None) -> str:
    """The one normalisation of a table prefix, used by every path (app, CLI, Database).

    '' or None means the default; surrounding spaces and every trailing '_' are dropped, as
    the Rust wheel does (its tables for 'ab__' are ab_jobs…). Idempotent, so applying it twice
    (kwargs, then Settings) cannot pick different tables.
    """
    if value is None:
        return DEFAULT_PREFIX
    if not isinstance(value, str):
        raise InvalidIdentifier(f"table prefix {value!r} is not a string; use e.g. 'solid_queue'")
    prefix = value.strip().rstrip("_")
    if value.strip() == "":
        return DEFAULT_PREFIX
    if not _PREFIX.match(prefix):
        raise InvalidIdentifier(
            f"table prefix {value!r} is not a valid identifier; use letters, digits and '_' "
            f"(starting with a letter or '_', at most 40 characters, not only '_'), e.g. 'solid_queue'"
        )
    return prefix


def queue_name(value: object) -> str:
    if not isinstance(value, str) or not _QUEUE.match(value):
        raise InvalidIdentifier(
            f"queue name {value!r} is not valid; use 1-100 letters, digits or '_' '-' '.' ':', "
            f"e.g. 'default' or 'mailers'"
        )
    return value


def queue_pattern(value: str) -> str:
    """A queue selector entry: a queue name, 'prefix*' or '*'."""
    if value == "*":
        return value
    if value.endswith("*"):
        queue_name(value[:-1] or "x")
        if "*" in value[:-1]:
            raise InvalidIdentifier(f"queue selector {value!r} may only end in '*' (a literal prefix), e.g. 'mail*'")
        return value
    return queue_name(value)


def forced_queue(value: str | None) -> str | None:
    """QUEBEC_FORCE_OVERRIDE_QUEUE: URL-hostile characters become '-'; '' clears it."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    return queue_name(_FORCED_QUEUE_HOSTILE.sub("-", value))
