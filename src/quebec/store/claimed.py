"""claimed → finished | failed | ready, and the retry that finishes one row and schedules another."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import bindparam, insert, select, update

from quebec.store import unique
from quebec.store.blocked import free_queue_slots_of, free_slots_of
from quebec.store.database import Tx
from quebec.store.error_record import error_json
from quebec.store.finished import mark_finished
from quebec.store.jobs import enqueue_many
from quebec.store.results import Ending, announce_done
from quebec.store.routing import from_jobs, route, to_ready
from quebec.types import ErrorInfo, Finished, JobStatus, NewJob


def _held(tx: Tx, *, process_id: int, job_ids: Sequence[int]) -> list[int]:
    """Delete this process's claims on `job_ids`; the jobs it still held."""
    sql = tx.statements
    claims = tx.tables.claimed_executions
    return tx.dialect.delete_returning(tx.conn, claims, sql.claims_of_process, sql.ids(job_ids, process_id=process_id))


def finish_many(
    tx: Tx,
    *,
    process_id: int,
    job_ids: Sequence[int],
    preserve: bool | None = None,
    endings: Mapping[int, Ending] | None = None,
) -> Finished:
    """claimed → finished, for the jobs this process still holds.

    A claim can vanish under us (we were pruned during an outage): those jobs belong
    to someone else now and come back in `lost`. `preserve` and `endings` (results,
    discards) as in mark_finished. Their concurrency slots go to the next blocked jobs in
    the same transaction.
    """
    if not job_ids:
        return Finished(job_ids=())
    held = _held(tx, process_id=process_id, job_ids=job_ids)
    free_slots_of(tx, held)
    mark_finished(tx, held, preserve=preserve, endings=endings)
    return Finished(job_ids=tuple(sorted(held)), lost=tuple(sorted(set(job_ids) - set(held))))


class Failure(NamedTuple):
    """One job to fail: its error, and its arguments with the failure counters (None keeps them)."""

    job_id: int
    error: ErrorInfo
    arguments: str | None = None


def fail_many(tx: Tx, *, process_id: int, failures: Sequence[Failure]) -> list[int]:
    """claimed → failed, for the jobs this process still holds; returns those it failed.

    The error is kept in failed_executions; finished_at stays NULL. Three statements for
    any number of jobs: a commit costs a disk flush, so a storm of failures is written
    in batches like successes are.
    """
    if not failures:
        return []
    held = set(_held(tx, process_id=process_id, job_ids=[f.job_id for f in failures]))
    free_slots_of(tx, sorted(held))
    mine = [f for f in failures if f.job_id in held]
    jobs = tx.tables.jobs
    same = [f.job_id for f in mine if f.arguments is None]
    if same:
        tx.conn.execute(update(jobs).where(jobs.c.id.in_(same)).values(updated_at=tx.now))
    counted = [{"b_id": f.job_id, "b_arguments": f.arguments} for f in mine if f.arguments is not None]
    if counted:
        tx.conn.execute(
            update(jobs)
            .where(jobs.c.id == bindparam("b_id"))
            .values(arguments=bindparam("b_arguments"), updated_at=tx.now),
            counted,
        )
    if mine:
        tx.conn.execute(
            insert(tx.tables.failed_executions),
            [{"job_id": f.job_id, "error": error_json(f.error), "created_at": tx.now} for f in mine],
        )
        announce_done(tx)
    return sorted(held)


def fail(tx: Tx, *, process_id: int, job_id: int, error: ErrorInfo, arguments: str | None = None) -> bool:
    """claimed → failed for one job (fail_many of one)."""
    return bool(fail_many(tx, process_id=process_id, failures=[Failure(job_id, error, arguments)]))


def retry_many(
    tx: Tx, *, process_id: int, next_runs: Mapping[int, NewJob], preserve: bool | None = None
) -> dict[int, int]:
    """claimed → finished, plus a new job row (same active_job_id) scheduled for each next
    attempt, for the jobs this process still holds; returns {old id: new id}."""
    if not next_runs:
        return {}
    held = sorted(_held(tx, process_id=process_id, job_ids=list(next_runs)))
    free_slots_of(tx, held)  # the next attempt takes a slot again when it is due
    if not held:
        return {}
    enqueued = enqueue_many(tx, [next_runs[job_id] for job_id in held])
    next_ids = dict(zip(held, enqueued.ids, strict=True))
    unique.hand_over(tx, moves=next_ids)
    endings = {old: Ending(old, JobStatus.RETRIED, next_job_id=new) for old, new in next_ids.items()}
    mark_finished(tx, held, preserve=preserve, endings=endings)
    return next_ids


def retry(tx: Tx, *, process_id: int, job_id: int, next_run: NewJob, preserve: bool | None = None) -> int | None:
    """claimed → finished plus the next attempt, for one job (retry_many of one)."""
    return retry_many(tx, process_id=process_id, next_runs={job_id: next_run}, preserve=preserve).get(job_id)


def discard(tx: Tx, *, process_id: int, job_id: int, preserve: bool | None = None) -> bool:
    """claimed → finished, without running again (discard_on, rescue_from, exhausted with
    handler): in the tables, the same transition as finishing, recorded as discarded."""
    endings = {job_id: Ending(job_id, JobStatus.DISCARDED)}
    return bool(finish_many(tx, process_id=process_id, job_ids=[job_id], preserve=preserve, endings=endings).job_ids)


def reschedule_many(tx: Tx, *, process_id: int, run_at: Mapping[int, datetime]) -> list[int]:
    """claimed → scheduled at `run_at[job]`, without running (a rate limit said not yet), for
    the jobs this process still holds; returns those. Their concurrency slots are given
    back and taken again when they are due."""
    held = sorted(_held(tx, process_id=process_id, job_ids=list(run_at)))
    if not held:
        return []
    free_slots_of(tx, held)
    route(tx, [job._replace(scheduled_at=run_at[job.job_id]) for job in from_jobs(tx, held)])
    return held


def reschedule(tx: Tx, *, process_id: int, job_id: int, run_at: datetime) -> bool:
    """claimed → scheduled for one job (reschedule_many of one)."""
    return bool(reschedule_many(tx, process_id=process_id, run_at={job_id: run_at}))


def release_many(tx: Tx, *, process_id: int, job_ids: Sequence[int]) -> list[int]:
    """claimed → ready: jobs this process holds but will not finish (shutdown); they run
    again, keeping the concurrency slot they hold."""
    if not job_ids:
        return []
    held = _held(tx, process_id=process_id, job_ids=job_ids)
    free_queue_slots_of(tx, held)
    to_ready(tx, held, holding=True)
    return held


def held_by(tx: Tx, *, process_id: int) -> list[int]:
    """The job ids a process holds claims on (to reconcile after an unknown commit outcome)."""
    claims = tx.tables.claimed_executions
    return list(tx.conn.scalars(select(claims.c.job_id).where(claims.c.process_id == process_id)))
