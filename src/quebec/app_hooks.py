"""Quebec's lifecycle hooks and job-event subscriptions, mixed into `Quebec` to keep app.py small."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from quebec.events import JobEventKind, Subscriber

if TYPE_CHECKING:
    from quebec.hooks import Hooks
    from quebec.store import Database

F = TypeVar("F", bound=Callable[..., Any])


class HookMethods:
    db: Database
    hooks: Hooks

    def subscribe(self, fn: Subscriber, *kinds: JobEventKind | str) -> Callable[[], None]:
        """Call `fn(quebec.JobEvent)` on job events of `kinds` in this process (every kind when
        none is given): enqueued, started, finished, failed, retried, discarded. Returns the
        function that unsubscribes. A subscriber that raises is logged, never breaks the job."""
        return self.db.events.subscribe(fn, kinds)

    def on_start(self, fn: F) -> F:
        return self.hooks.add("start", fn)

    def on_stop(self, fn: F) -> F:
        return self.hooks.add("stop", fn)

    def on_worker_start(self, fn: F) -> F:
        return self.hooks.add("worker_start", fn)

    def on_worker_stop(self, fn: F) -> F:
        return self.hooks.add("worker_stop", fn)

    def on_shutdown(self, fn: F) -> F:
        return self.hooks.add("shutdown", fn)

    def invoke_start_handlers(self) -> None:
        self.hooks.run("start")

    def invoke_stop_handlers(self) -> None:
        self.hooks.run("stop")
