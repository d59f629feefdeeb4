"""`python -m quebec batches list|show|sweep|clear` (docs/batches.md)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click

from quebec import ops
from quebec.batches import Batch
from quebec.cli.common import MAX_JOB_ID, CommandError, Since, database, json_option
from quebec.cli.output import Column, age, emit_json, iso, seconds_between, table
from quebec.store.batch_listings import MEMBER_FILTERS, STATUSES, BatchDetail
from quebec.store.batches import BatchRow

MAX_LIMIT = 10_000
SHOW_JOBS = 200


@click.group("batches", short_help="List, show, sweep or clear batches.")
def batches() -> None:
    """List, show, sweep (repair) or clear batches of jobs."""


def _batch(row: BatchRow) -> Batch:
    """The row read as quebec.Batch reads it (status, live counters, progress); never reloaded."""
    return Batch(None, row, row.pending_jobs, row.live_failed_jobs)


@batches.command("list", short_help="The newest batches first, with their progress.")
@click.option("--status", type=click.Choice(STATUSES), help="Only batches with this status.")
@click.option("--limit", type=click.IntRange(1, MAX_LIMIT), default=50, show_default=True, help="At most this many.")
@json_option
def list_batches(status: str | None, limit: int, as_json: bool) -> int:
    """The newest batches first: status, progress, description."""
    found: list[Batch] = []
    with database() as (_, db):
        before = None
        while len(found) < limit:  # pages of at most 200 rows, newest first
            page = ops.list_batches(db, status=status, before=before, limit=min(200, limit - len(found)))
            found.extend(_batch(r) for r in page.batches)
            if page.next_before is None:
                break
            before = page.next_before
        now = db.clock.now()
    if as_json:
        emit_json([_batch_dict(b) for b in found])
        return 0
    columns = [
        Column("ID", right=True),
        Column("STATUS"),
        Column("DONE", right=True),
        Column("FAILED", right=True),
        Column("TOTAL", right=True),
        Column("PROGRESS", right=True),
        Column("CREATED", right=True),
        Column("FINISHED", right=True),
        Column("DESCRIPTION", flex=True),
    ]
    table(
        columns,
        [
            (
                b.id,
                b.status,
                b.completed_jobs,
                b.failed_jobs,
                b.total_jobs,
                f"{b.progress_percentage:.1f}%",
                age(seconds_between(now, b.created_at)),
                age(seconds_between(now, b.finished_at)),
                b.description,
            )
            for b in found
        ],
    )
    more = "; the newest only: narrow with --status or raise --limit" if len(found) == limit else ""
    click.echo(f"{len(found)} batch(es){more}")
    return 0


@batches.command("show")
@click.argument("batch_id", metavar="ID", type=click.IntRange(1, MAX_JOB_ID))
@click.option("--jobs", "jobs_status", type=click.Choice(MEMBER_FILTERS), help="Only its jobs that are this.")
@json_option
def show(batch_id: int, jobs_status: str | None, as_json: bool) -> int:
    """One batch: its status, counters, times, metadata, callbacks and (the newest 200) jobs."""
    with database() as (_, db):
        detail = ops.batch_detail(db, batch_id, limit=SHOW_JOBS, jobs_status=jobs_status)
        now = db.clock.now()
    if detail is None:
        raise CommandError(f"batch {batch_id} does not exist (cleared by clear_finished_batches, or never created)")
    b = _batch(detail.batch)
    if as_json:
        emit_json(_detail_dict(b, detail))
        return 0
    fields: list[tuple[str, object]] = [
        ("status", b.status),
        ("description", b.description),
        ("uuid", b.active_job_batch_id),
        ("progress", f"{b.progress_percentage:.1f}%"),
        ("jobs", f"{b.completed_jobs} completed, {b.failed_jobs} failed, {b.pending_jobs} pending of {b.total_jobs}"),
        ("created", _when(b.created_at, now)),
        ("started", _when(b.enqueued_at, now)),
        ("finished", _when(b.finished_at, now)),
        ("metadata", json.dumps(b.metadata, ensure_ascii=False) if b.metadata else None),
    ]
    click.echo(f"batch {b.id}")
    for name, value in fields:
        click.echo(f"  {name:<14}{'-' if value is None else value}")
    for c in detail.callbacks:
        ran = f"job {c.job_id}" if c.job_id else ("not enqueued" if b.finished else "when the batch finishes")
        click.echo(f"  {c.role:<14}{c.class_name} on {c.queue_name or 'default'} ({ran})")
    click.echo("")
    table(
        [Column("JOB", right=True), Column("STATUS"), Column("QUEUE", flex=True), Column("CLASS", flex=True)],
        [(m.id, m.status, m.queue_name, m.class_name) for m in detail.members],
    )
    more = f"; the newest {SHOW_JOBS} only" if detail.next_before is not None else ""
    click.echo(f"{len(detail.members)} job(s){more}")
    return 0


@batches.command("sweep", short_help="Repair stalled batches.")
@click.option(
    "--stalled-for",
    type=click.FloatRange(0, min_open=True),
    default=300.0,
    show_default=True,
    help="Start batches created this many seconds ago that were never started.",
)
@json_option
def sweep(stalled_for: float, as_json: bool) -> int:
    """qc.sweep_stalled_batches(): drop tracking rows of members that ended unheard, finish
    started batches with nothing outstanding, start batches never started."""
    with database() as (_, db):
        done = ops.sweep_stalled_batches(db, stalled_for=stalled_for)
    if as_json:
        emit_json(done)
    else:
        click.echo(", ".join(f"{n} {name.replace('_', ' ')}" for name, n in done.items()))
    return 0


@batches.command("clear", short_help="Delete succeeded batches finished before a time.")
@click.option(
    "--finished-before",
    type=Since(),
    help="30m, 2h, 1d ago, an ISO time (UTC) or epoch seconds (default: clear_finished_jobs_after ago).",
)
@json_option
def clear(finished_before: datetime | None, as_json: bool) -> int:
    """qc.clear_finished_batches(): delete succeeded batches finished before the cut-off;
    failed ones are kept, like failed jobs."""
    with database() as (settings, db):
        n = ops.clear_finished_batches(db, settings, finished_before=finished_before)
    if as_json:
        emit_json({"cleared": n})
    else:
        click.echo(f"cleared {n} batch(es)")
    return 0


def _when(moment: datetime | None, now: datetime) -> str | None:
    if moment is None:
        return None
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC ({age(seconds_between(now, moment))} ago)"


def _batch_dict(b: Batch) -> dict[str, Any]:
    return {
        "id": b.id,
        "active_job_batch_id": b.active_job_batch_id,
        "status": b.status,
        "description": b.description,
        "total_jobs": b.total_jobs,
        "completed_jobs": b.completed_jobs,
        "failed_jobs": b.failed_jobs,
        "pending_jobs": b.pending_jobs,
        "progress_percentage": b.progress_percentage,
        "metadata": b.metadata,
        "created_at": iso(b.created_at),
        "enqueued_at": iso(b.enqueued_at),
        "finished_at": iso(b.finished_at),
        "failed_at": iso(b.failed_at),
    }


def _detail_dict(b: Batch, detail: BatchDetail) -> dict[str, Any]:
    return {
        **_batch_dict(b),
        "callbacks": [
            {
                "role": c.role,
                "class_name": c.class_name,
                "queue_name": c.queue_name,
                "arguments": c.arguments,
                "job_id": c.job_id,
            }
            for c in detail.callbacks
        ],
        "jobs": [
            {
                "id": m.id,
                "status": m.status,
                "class_name": m.class_name,
                "queue_name": m.queue_name,
                "created_at": iso(m.created_at),
                "finished_at": iso(m.finished_at),
            }
            for m in detail.members
        ],
        "more_jobs": detail.next_before is not None,
    }
