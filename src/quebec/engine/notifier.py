"""Wake-ups: in-process after an enqueue commits, and LISTEN/NOTIFY where the database has it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from quebec.store import Database

log = logging.getLogger("quebec.notifier")


class Notifier:
    def __init__(
        self, db: Database, channel: str, wake: Callable[[Iterable[str] | None], None], use_listen: bool
    ) -> None:
        self._wake = wake
        self._listener: Any = None
        if use_listen and db.dialect.supports_listen:
            self._listener = db.dialect.listener(channel, lambda queue: wake([queue]))

    def start(self) -> None:
        if self._listener is not None:
            self._listener.start()

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.stop()
