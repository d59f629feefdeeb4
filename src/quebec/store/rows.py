"""Row → value type, one function per type."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from quebec.types import ClaimedJob

# The jobs columns a claim reads back: a claim selects these and no more (PyMySQL parses
# every column's description again for each result, a third of a claim's Python time).
CLAIMED_JOB_COLUMNS = (
    "id",
    "queue_name",
    "class_name",
    "arguments",
    "priority",
    "active_job_id",
    "scheduled_at",
    "concurrency_key",
    "created_at",
)


def claimed_job(row: Row[Any]) -> ClaimedJob:
    return ClaimedJob(
        id=row.id,
        queue_name=row.queue_name,
        class_name=row.class_name,
        arguments=row.arguments,
        priority=row.priority,
        active_job_id=row.active_job_id,
        scheduled_at=row.scheduled_at,
        concurrency_key=row.concurrency_key,
        created_at=row.created_at,
    )
