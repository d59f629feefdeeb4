"""`python -m quebec jobs list|show|retry|discard|cancel`."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import click

from quebec import ops
from quebec.cli.common import CommandError, JobId, Since, State, act_on_ids, database, json_option, not_in_state
from quebec.cli.output import Column, age, emit_json, error_line, iso, seconds_between, table
from quebec.encryption import Cipher
from quebec.store import Database
from quebec.store.queries import JobRow
from quebec.types import JobState, JobStatus

MAX_LIMIT = 10_000


@click.group("jobs", short_help="List, show, retry, discard or cancel jobs.")
def jobs() -> None:
    """List, show, retry, discard or cancel jobs."""


@jobs.command("list", short_help="The newest jobs first, with their state.")
@click.option(
    "--state",
    type=State(),
    help="scheduled, ready, blocked, running (or claimed), failed, finished, cancelled, discarded or retried.",
)
@click.option("--queue", "queue_name", metavar="NAME", help="Only jobs of this queue.")
@click.option("--class", "class_name", metavar="NAME", help="Only jobs of this class.")
@click.option("--since", type=Since(), help="Enqueued since: 30m, 2h, 1d ago, an ISO time (UTC) or epoch seconds.")
@click.option("--limit", type=click.IntRange(1, MAX_LIMIT), default=50, show_default=True, help="At most this many.")
@json_option
def list_jobs(
    state: JobStatus | None,
    queue_name: str | None,
    class_name: str | None,
    since: datetime | None,
    limit: int,
    as_json: bool,
) -> int:
    """The newest jobs first, with their state."""
    with database() as (_, db):
        rows = ops.latest_jobs(db, status=state, queue_name=queue_name, class_name=class_name, since=since, limit=limit)
        now = db.clock.now()
    if as_json:
        emit_json([_job_dict(r) for r in rows])
        return 0
    columns = [
        Column("ID", right=True),
        Column("STATE"),
        Column("QUEUE", flex=True),
        Column("CLASS", flex=True),
        Column("PRI", right=True),
        Column("ENQUEUED", right=True),
        Column("DETAIL", flex=True),
    ]
    table(
        columns,
        [
            (
                r.id,
                r.status,
                r.queue_name,
                r.class_name,
                r.priority,
                age(seconds_between(now, r.created_at)),
                _detail(r, now),
            )
            for r in rows
        ],
    )
    more = (
        "; the newest only: narrow with --state/--queue/--class/--since or raise --limit" if len(rows) == limit else ""
    )
    click.echo(f"{len(rows)} job(s){more}")
    return 0


def _detail(row: JobRow, now: datetime) -> str:
    if row.state is JobState.FAILED:
        return error_line(row.error)
    if row.state is JobState.SCHEDULED and row.scheduled_at is not None:
        return f"runs in {age(seconds_between(row.scheduled_at, now))}"
    if row.state is JobState.CLAIMED:
        return f"process {row.process_id}"
    if row.state is JobState.FINISHED and row.finished_at is not None:
        retried = f", runs again as job {row.next_job_id}" if row.next_job_id is not None else ""
        return f"ended {age(seconds_between(now, row.finished_at))} ago{retried}"
    return ""


@jobs.command("show")
@click.argument("job_id", metavar="ID", type=JobId())
@json_option
def show(job_id: int, as_json: bool) -> int:
    """One job: its state, times, arguments and error."""
    with database() as (settings, db):
        # A result encrypted at rest is opened when the key is set, as qc.get_job() opens it.
        row = ops.get_job(db, job_id, Cipher.from_setting(settings.encryption_key))
        now = db.clock.now()
    if row is None:
        raise CommandError(f"job {job_id} does not exist")
    if as_json:
        emit_json(_job_dict(row))
        return 0
    fields: list[tuple[str, object]] = [
        ("status", row.status),
        ("queue", row.queue_name),
        ("class", row.class_name),
        ("priority", row.priority),
        ("active_job_id", row.active_job_id),
        ("enqueued", _when(row.created_at, now)),
        ("scheduled", _when(row.scheduled_at, now)),
        ("finished", _when(row.finished_at, now)),
        ("process", row.process_id),
        ("attempts", row.attempts),
        ("arguments", row.arguments),
        ("result", row.result_json),
        ("next job", row.next_job_id),
    ]
    if row.error:
        fields.append(("error", error_line(row.error)))
    click.echo(f"job {row.id}")
    for name, value in fields:
        click.echo(f"  {name:<14}{'-' if value is None else value}")
    backtrace = (row.error or {}).get("backtrace")
    if backtrace:
        click.echo("  backtrace")
        for entry in backtrace if isinstance(backtrace, list) else [backtrace]:
            for line in str(entry).splitlines():
                click.echo(f"    {line}")
    return 0


def _when(moment: datetime | None, now: datetime) -> str | None:
    if moment is None:
        return None
    seconds = (now - moment).total_seconds()
    relative = f"{age(seconds)} ago" if seconds >= 0 else f"in {age(-seconds)}"
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC ({relative})"


def _job_dict(row: JobRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "status": row.status.value,
        "state": row.state.value,
        "queue_name": row.queue_name,
        "class_name": row.class_name,
        "priority": row.priority,
        "active_job_id": row.active_job_id,
        "arguments": _json_or_text(row.arguments),
        "created_at": iso(row.created_at),
        "scheduled_at": iso(row.scheduled_at),
        "finished_at": iso(row.finished_at),
        "process_id": row.process_id,
        "error": row.error,
        "attempts": row.attempts,
        "result": _json_or_text(row.result_json),
        "next_job_id": row.next_job_id,
    }


def _json_or_text(text: str | None) -> Any:
    # arguments is the JSON envelope as stored; a row another writer left malformed is shown as found
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _on_failed(name: str, verb: str, act: Callable[[Database, Sequence[int]], int], help_text: str) -> None:
    @jobs.command(name, help=help_text, short_help=f"{name.capitalize()} failed jobs.")
    @click.argument("ids", metavar="ID...", nargs=-1, required=True, type=JobId())
    @json_option
    def command(ids: tuple[int, ...], as_json: bool) -> int:
        with database() as (_, db):
            return act_on_ids(db, ids, act, verb=verb, needs="failed", as_json=as_json)


_on_failed("retry", "retried", ops.retry_failed, "Failed jobs back to ready: they run again.")
_on_failed(
    "discard",
    "discarded",
    ops.discard_failed,
    "Failed jobs to finished: given up on (a job that has not run yet is cancelled instead).",
)


@jobs.command("cancel", short_help="Cancel jobs that have not started.")
@click.argument("ids", metavar="ID...", nargs=-1, required=True, type=JobId())
@json_option
def cancel(ids: tuple[int, ...], as_json: bool) -> int:
    """Jobs that have not started (ready, scheduled, blocked): they will not run."""
    wanted = list(dict.fromkeys(ids))
    with database() as (_, db):
        done = ops.cancel(db, wanted)  # one transaction for them all
        missed = [job_id for job_id in wanted if job_id not in set(done)]
        if as_json:
            emit_json({"cancelled": len(done)})
        else:
            click.echo(f"cancelled {len(done)} job(s)")
        if missed:
            raise CommandError(
                f"{not_in_state(db, missed, 'ready, scheduled or blocked')}, so "
                f"{'it was' if len(missed) == 1 else 'they were'} not cancelled"
            )
    return 0
