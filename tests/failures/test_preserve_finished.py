"""preserve_finished_jobs=False deletes the row on every way to finished, not only on success.

Before, only finish_many honoured it: a discarded job, the first run of a retried one,
a cancelled job, a cancelled scheduled job and a discarded failed job all kept their rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import quebec
from conftest import eventually
from quebec.store import queries
from quebec.types import JobState


class Discards(quebec.BaseClass):
    discard_on = [ValueError]

    def perform(self) -> None:
        raise ValueError("not worth it")


class Idle(quebec.BaseClass):
    def perform(self) -> None:
        pass


def _gone(qc: Any, job: Any) -> bool:
    return qc.get_job(job.id) is None


def test_worker_transitions_to_finished_delete_the_row_when_finished_jobs_are_not_kept(
    make_qc: Callable[..., Any],
) -> None:
    qc = make_qc(preserve_finished_jobs=False)
    handled: list[str] = []
    qc.register_job(Discards)
    qc.register_job(Idle)

    @qc.register_job
    class Retries(quebec.BaseClass):
        retry_on = [quebec.RetryStrategy((ConnectionError,), wait=3600, attempts=2)]

        def perform(self) -> None:
            raise ConnectionError("later")

    @qc.register_job
    class Exhausts(quebec.BaseClass):
        retry_on = [
            quebec.RetryStrategy((KeyError,), wait=0, attempts=1, handler=lambda job, error: handled.append("x"))
        ]

        def perform(self) -> None:
            raise KeyError("gone")

    discarded, retried, exhausted, succeeded = (
        Discards.perform_later(),
        Retries.perform_later(),
        Exhausts.perform_later(),
        Idle.perform_later(),
    )
    qc.start(spawn=["worker"])
    eventually(lambda: all(_gone(qc, j) for j in (discarded, retried, exhausted, succeeded)))
    qc.stop()
    assert handled == ["x"]
    rows = qc.db.read(queries.list_jobs)
    # the retry's next run is the only row left, scheduled, with the same active_job_id
    assert [(r.active_job_id, r.state) for r in rows] == [(retried.active_job_id, JobState.SCHEDULED)]


def test_operator_transitions_to_finished_delete_the_row_when_finished_jobs_are_not_kept(
    make_qc: Callable[..., Any],
) -> None:
    qc = make_qc(preserve_finished_jobs=False)

    @qc.register_job
    class Fails(quebec.BaseClass):
        def perform(self) -> None:
            raise RuntimeError("broken")

    qc.register_job(Idle)

    failed = Fails.perform_later()
    qc.start(spawn=["worker"])
    eventually(lambda: qc.get_job(failed.id).state == JobState.FAILED)
    qc.stop()
    ready = Idle.perform_later()
    scheduled = Idle.set(wait=3600).perform_later()
    scheduled_too = Idle.set(wait=3600).perform_later()
    assert qc.discard_failed(failed.id) is True
    assert qc.cancel(ready.id) is True
    assert qc.cancel(scheduled.id) is True
    assert qc.cancel_scheduled(scheduled_too.id) is True
    assert [j.id for j in (failed, ready, scheduled, scheduled_too) if not _gone(qc, j)] == []
    assert qc.db.read(queries.list_jobs) == []


def test_finished_jobs_keep_their_rows_by_default(qc: Any) -> None:
    qc.register_job(Discards)
    qc.register_job(Idle)

    discarded = Discards.perform_later()
    qc.start(spawn=["worker"])
    eventually(lambda: qc.get_job(discarded.id).state == JobState.FINISHED)
    qc.stop()
    cancelled = Idle.set(wait=3600).perform_later()
    assert qc.cancel_scheduled(cancelled.id) is True
    row = qc.get_job(cancelled.id)
    assert row.state == JobState.FINISHED and row.finished_at is not None
