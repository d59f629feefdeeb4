"""In-process job events: enqueued, started, finished, failed, retried, discarded.

    def on_event(event: quebec.JobEvent) -> None:
        metrics.increment(f"jobs.{event.kind}", tags=[event.class_name])

    qc.subscribe(on_event)                         # every kind
    qc.subscribe(alert, quebec.JobEventKind.FAILED)

Subscribers run in the thread that caused the event (the enqueuing thread, a worker
thread before perform, the completer after the outcome is committed), so they must be
quick; one that raises is logged with its name and never breaks the job or the worker.
With no subscriber, emitting costs one truth test.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

log = logging.getLogger("quebec.events")


class JobEventKind(StrEnum):
    ENQUEUED = "enqueued"
    STARTED = "started"
    FINISHED = "finished"
    FAILED = "failed"
    RETRIED = "retried"
    DISCARDED = "discarded"


@dataclass(frozen=True, slots=True)
class JobEvent:
    kind: JobEventKind
    job_id: int
    class_name: str
    queue_name: str | None = None
    error: Any = None  # the ErrorInfo of failed, retried and discarded


Subscriber = Callable[[JobEvent], object]


class JobEvents:
    """Who listens to which kinds; `emit` calls them, each in a try of its own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: tuple[tuple[Subscriber, frozenset[JobEventKind]], ...] = ()

    def __bool__(self) -> bool:
        return bool(self._subscribers)

    def subscribe(self, fn: Subscriber, kinds: Iterable[JobEventKind | str] = ()) -> Callable[[], None]:
        """Call `fn(event)` for events of `kinds` (all when empty); returns the unsubscribe function."""
        if not callable(fn):
            raise TypeError(f"subscribe() takes a function of one JobEvent, got {fn!r}")
        try:
            wanted = frozenset(JobEventKind(k) for k in kinds) or frozenset(JobEventKind)
        except ValueError:
            names = ", ".join(k.value for k in JobEventKind)
            raise ValueError(f"subscribe() kinds must be among {names}, got {list(kinds)!r}") from None
        entry = (fn, wanted)
        with self._lock:
            self._subscribers = (*self._subscribers, entry)

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = tuple(s for s in self._subscribers if s is not entry)

        return unsubscribe

    def emit(self, events: Iterable[JobEvent]) -> None:
        subscribers = self._subscribers
        if not subscribers:
            return
        for event in events:
            for fn, kinds in subscribers:
                if event.kind in kinds:
                    try:
                        fn(event)
                    except Exception:  # noqa: BLE001 - a subscriber never breaks the job
                        log.exception("event.subscriber_failed subscriber=%s kind=%s", _name(fn), event.kind)


def _name(fn: Callable[..., Any]) -> str:
    return str(getattr(fn, "__qualname__", None) or repr(fn))
