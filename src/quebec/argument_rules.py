"""What a job's arguments may hold, checked at enqueue, and the one-sentence error naming the
argument that breaks a rule (its path, what it is, how to fix it).

The envelope (quebec.arguments) encodes first, then runs each check only where the encoded text
shows it can find something (a dict for the key check, many brackets for the depth check); the
walk that names the culprit runs only after a failure. A job of plain values pays for one encode.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from enum import Enum
from typing import Any

from quebec.errors import SerializationError
from quebec.values import TYPE_TAG, encodes_tagged

# The last argument, a dict with this key set to true, carries the keyword arguments (the
# wheel's layout), so no argument of a job's own may use it.
KWARGS_TAG = "_quebec_kwargs"

_SCALARS = frozenset({str, int, float, bool, type(None)})
# Lists and dicts nested deeper than this are refused at enqueue: json's C encoder gives up
# near the recursion limit (~1,000) with a RecursionError, a worker decoding on a deep stack
# sooner, and the Rust wheel's serde_json reads no deeper than ~125 levels of arguments.
MAX_DEPTH = 100
_is_str = str.__instancecheck__
_PLAIN = (str, int, float, bool, type(None))


def refuse_reserved(class_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
    if KWARGS_TAG in kwargs:
        raise SerializationError(
            f"keyword argument {KWARGS_TAG!r} of {class_name} is reserved for Quebec's envelope; rename it"
        )
    if not kwargs and args and isinstance(args[-1], dict) and KWARGS_TAG in args[-1]:
        raise SerializationError(
            f"args[{len(args) - 1}] of {class_name} (a dict with the reserved key {KWARGS_TAG!r}) would be "
            f"read back as keyword arguments; rename that key"
        )


def check_keys(arguments: list[Any]) -> None:
    """json.dumps turns int/float/bool/None keys into strings silently; refuse them instead.

    The one walk on the enqueue path (docs/arguments.md has the timings): it skips scalars
    with a set lookup and checks keys in C through map().
    """
    stack: list[Any] = [arguments]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if TYPE_TAG in node or not all(map(_is_str, node)):
                raise TypeError("non-str or reserved key")
            stack += [v for v in node.values() if type(v) not in _SCALARS]
        elif isinstance(node, list | tuple):
            stack += [v for v in node if type(v) not in _SCALARS]


def explain(class_name: str, args: Sequence[Any], kwargs: Mapping[str, Any], exc: Exception) -> SerializationError:
    for key in kwargs:
        if not isinstance(key, str):
            return SerializationError(
                f"keyword argument {key!r} of {class_name} is {_a(key)}; keyword names must be str"
            )
    roots = _roots(args, kwargs)
    try:
        for path, what, fix in _problems(roots):
            return SerializationError(f"{path} of {class_name} ({what}) cannot be stored as JSON; {fix}")
    except RecursionError:  # _problems recurses; a value this deep is the problem itself
        pass
    deep = _too_deep(roots)
    if deep is not None:
        return _deep_error(class_name, deep)
    return SerializationError(f"the arguments of {class_name} cannot be stored as JSON: {exc}")


def _roots(args: Sequence[Any], kwargs: Mapping[str, Any]) -> list[tuple[str, Any]]:
    return [(f"args[{i}]", v) for i, v in enumerate(args)] + [(f"kwargs[{k!r}]", v) for k, v in kwargs.items()]


def check_depth(class_name: str, args: Sequence[Any], kwargs: Mapping[str, Any], encoded: str) -> None:
    """Refuse arguments nested deeper than MAX_DEPTH. Each level opens a bracket, so text with
    fewer brackets than that is shallow enough without a walk."""
    if encoded.count("[") + encoded.count("{") <= MAX_DEPTH:
        return
    deep = _too_deep(_roots(args, kwargs))
    if deep is not None:
        raise _deep_error(class_name, deep)


def _too_deep(roots: list[tuple[str, Any]]) -> str | None:
    """The path of the first root nesting lists/dicts more than MAX_DEPTH deep (iterative:
    the value may be too deep for recursion)."""
    for path, value in roots:
        stack: list[tuple[Any, int]] = [(value, 1)]
        while stack:
            node, depth = stack.pop()
            if isinstance(node, dict | list | tuple):
                if depth > MAX_DEPTH:
                    return path
                children = node.values() if isinstance(node, dict) else node
                stack += [(child, depth + 1) for child in children if type(child) not in _SCALARS]
    return None


def _deep_error(class_name: str, path: str) -> SerializationError:
    return SerializationError(
        f"{path} of {class_name} nests lists or dicts more than {MAX_DEPTH} levels deep, deeper than a job's "
        f"arguments may go; flatten it, or pass it as a JSON string or a reference to where it is stored"
    )


def _problems(roots: list[tuple[str, Any]], within: frozenset[int] = frozenset()) -> Iterator[tuple[str, str, str]]:
    """Depth-first (path, description, fix) for every value that cannot be stored."""
    for path, value in roots:
        if id(value) in within:
            yield path, f"{_a(value)} that contains itself", "pass a copy without the cycle"
        elif isinstance(value, dict):
            for key in value:
                if not isinstance(key, str):
                    yield path, f"a dict with {_a(key)} key {key!r}", "convert its keys to str"
                elif key == TYPE_TAG:
                    yield path, f"a dict with the reserved key {TYPE_TAG!r}", "rename that key"
            yield from _problems([(f"{path}[{k!r}]", v) for k, v in value.items()], within | {id(value)})
        elif isinstance(value, list | tuple):
            yield from _problems([(f"{path}[{i}]", v) for i, v in enumerate(value)], within | {id(value)})
        elif (fix := _fix_for(value)) is not None:
            what = f"a float {value!r}" if isinstance(value, float) else _a(value)
            yield path, "a str with an unpaired surrogate" if isinstance(value, str) else what, fix


def _fix_for(value: Any) -> str | None:
    """None when `value` stores fine, else how to make it storable."""
    if isinstance(value, float) and not math.isfinite(value):
        return "pass None or a string instead (JSON has no NaN or infinity)"
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "clean it first, e.g. value.encode('utf-8', 'replace').decode()"
        return None
    if isinstance(value, _PLAIN) or encodes_tagged(value):
        return None
    if isinstance(value, set | frozenset):
        return "pass a list instead"
    if isinstance(value, bytes | bytearray | memoryview):
        return "decode it to a str (or base64-encode it) first"
    if isinstance(value, Enum):
        return "pass its .value instead"
    if callable(value):
        return "jobs cannot carry code; pass the data it needs, or a name to look it up by"
    return (
        "pass plain JSON values (str, int, float, bool, None, list, dict) or a datetime, date, time, "
        "timedelta, UUID or Decimal instead, e.g. the object's id"
    )


def _a(value: Any) -> str:
    kind = type(value)
    name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    return f"{'an' if name[0].lower() in 'aeiou' else 'a'} {name}"
