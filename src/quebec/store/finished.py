"""→ finished: the one place a job row is marked finished, or deleted when finished jobs are not kept."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from quebec.store.database import Tx
from quebec.store.results import Ending, ended
from quebec.types import JobStatus


def mark_finished(
    tx: Tx,
    job_ids: Sequence[int],
    *,
    preserve: bool | None = None,
    status: JobStatus = JobStatus.FINISHED,
    endings: Mapping[int, Ending] | None = None,
) -> None:
    """Set finished_at on these jobs, or delete their rows under preserve_finished_jobs=False,
    and record how they ended (`status`, or each job's own entry in `endings`: a result, a
    next attempt) in job_results.

    `preserve` overrides the setting carried by `tx` (the completer passes its own). The
    caller has already removed the job's execution row: a finished job has none.
    """
    if not job_ids:
        return
    ended(tx, [(endings or {}).get(j) or Ending(j, status) for j in job_ids], preserve=preserve)
    sql = tx.statements
    if tx.preserve_finished if preserve is None else preserve:
        tx.conn.execute(sql.mark_finished, sql.ids(job_ids, now=tx.now))
    else:
        tx.conn.execute(sql.delete_jobs, sql.ids(job_ids))
