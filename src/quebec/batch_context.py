"""The batch that enqueues join (a ContextVar), and where a job's envelope names its batch.

`current_batch_id` holds the id of the batch whose `with qc.batch(...)` or
`with batch.enqueue():` block is open in this context (None elsewhere, including inside a
job's perform). The envelope keys are the wheel's: "batch_id" on a member job,
"callback_batch_id" on a callback job.
"""

from __future__ import annotations

import contextvars
import json
from typing import Any

__all__ = ["current_batch_id", "envelope_batch_id"]

current_batch_id: contextvars.ContextVar[int | None] = contextvars.ContextVar("quebec_current_batch_id", default=None)

MEMBER_KEY = "batch_id"
CALLBACK_KEY = "callback_batch_id"


def envelope_batch_id(envelope: str | None, key: str = MEMBER_KEY) -> int | None:
    """The batch id an envelope names under `key` (top level), or None. Cheap for the usual
    job: no JSON is parsed unless the key's text is in the envelope."""
    if not envelope or f'"{key}":' not in envelope:
        return None
    try:
        raw = json.loads(envelope)
    except ValueError:
        return None
    value = raw.get(key) if isinstance(raw, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class OnInstance:
    """An attribute read from a slot on instances and None on the class (ActiveJob.batch_id:
    the wheel's class-level default is None)."""

    def __init__(self, slot: str) -> None:
        self._slot = slot

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        return None if obj is None else getattr(obj, self._slot)

    def __set__(self, obj: object, value: Any) -> None:
        setattr(obj, self._slot, value)
