"""Lifecycle hooks. A failing hook is logged with its name and never stops the worker."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger("quebec.hooks")
F = TypeVar("F", bound=Callable[..., Any])
EVENTS = ("start", "stop", "worker_start", "worker_stop", "shutdown")


class Hooks:
    def __init__(self) -> None:
        self._handlers: dict[str, list[Callable[..., Any]]] = {e: [] for e in EVENTS}

    def add(self, event: str, fn: F) -> F:
        if not callable(fn):
            raise TypeError(f"@qc.on_{event} needs a function, got {fn!r}")
        self._handlers[event].append(fn)
        return fn

    def run(self, event: str, *args: Any) -> None:
        for fn in self._handlers[event]:
            call_hook(f"on_{event}:{getattr(fn, '__qualname__', fn)}", fn, *args)


def call_hook(name: str, fn: Callable[..., Any], *args: Any) -> bool:
    """Call user code that must not take the runtime down; False when it raised."""
    try:
        fn(*args)
        return True
    except Exception:
        log.exception("hook.failed hook=%s", name)
        return False
