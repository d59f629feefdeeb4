"""Shared pieces of the API tests: counting rows and failing jobs as a worker would.

Not a conftest: tests import what they use.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from quebec.store import claimed, processes, queries, ready
from quebec.types import ErrorInfo, JobState, ProcessInfo, QueueSelector


def count_rows(qc: Any, table_name: str = "jobs") -> int:
    table = getattr(qc.db.tables, table_name)
    return int(qc.db.read(lambda tx: tx.conn.execute(select(func.count()).select_from(table)).scalar()) or 0)


def state(qc: Any, job_id: int) -> JobState | None:
    row = qc.get_job(job_id)
    return None if row is None else row.state


def fail_ready_jobs(qc: Any, error: ErrorInfo) -> list[int]:
    """Claim every ready job under a registered process and fail it with `error`: the two
    transitions a worker makes for a job whose perform raised."""
    pid = qc.db.transact(
        processes.register, info=ProcessInfo(kind="Worker", name="api-test", pid=1, hostname="test-host")
    )
    jobs = qc.db.transact(ready.claim, queues=QueueSelector(("*",)), limit=1000, process_id=pid)
    for job in jobs:
        assert qc.db.transact(claimed.fail, process_id=pid, job_id=job.id, error=error)
    return [job.id for job in jobs]


def failed_ids(qc: Any) -> set[int]:
    return {r.id for r in qc.db.read(queries.list_jobs, state=JobState.FAILED, limit=1000)}
