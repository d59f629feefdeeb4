"""ProcessTable: the process rows one OS process holds, one per component it runs.

Each worker and dispatcher has a row of its own (a worker's claims name its row), keyed
here by the component's key ("worker-0", "dispatcher-0", "scheduler"). A row that pruning
removed while this process was paused is registered again under the same key.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace

from quebec.engine.process_rows import process_info
from quebec.store import Database, processes

log = logging.getLogger("quebec.supervisor")


@dataclass(frozen=True)
class Registered:
    kind: str
    label: str  # the name's prefix: "worker", "dispatcher"…; the row's name adds a random suffix
    name: str
    id: int
    metadata: dict[str, object]


class ProcessTable:
    def __init__(self, db: Database, hostname: str, supervisor_id: int | None) -> None:
        self._db = db
        self.hostname = hostname
        self._supervisor_id = supervisor_id  # the fork supervisor's row, in a forked child
        self._rows: dict[str, Registered] = {}
        self._lock = threading.Lock()

    def register(self, kind: str, key: str, label: str, extra: dict[str, object]) -> Registered:
        info, metadata = process_info(kind, label, self.hostname, extra)
        info = replace(info, supervisor_id=self._supervisor_id)
        row_id = self._db.transact(processes.register, info=info)
        row = Registered(kind, label, info.name, row_id, metadata)
        with self._lock:
            self._rows[key] = row
        return row

    def id_of(self, key: str) -> int:
        with self._lock:
            return self._rows[key].id

    def ids(self) -> list[int]:
        with self._lock:
            return [r.id for r in self._rows.values()]

    def reregister(self, missing: list[int]) -> None:
        """Register again each of our rows whose id is in `missing` (pruned while we were paused)."""
        with self._lock:
            gone = [(key, row) for key, row in self._rows.items() if row.id in missing]
        for key, row in gone:
            extra = {k: v for k, v in row.metadata.items() if k not in ("started_at", "hostname")}
            self.register(row.kind, key, row.label, extra)

    def deregister_all(self) -> None:
        with self._lock:
            rows = list(self._rows.values())
        for row in rows:
            try:
                self._db.transact(processes.deregister, process_id=row.id)
            except Exception:
                log.exception("process.deregister_failed id=%s", row.id)
