"""`python -m quebec failed list|retry|discard [ID ... | --all] [--class NAME] [--queue NAME] [--json]`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from quebec import ops
from quebec.cli.common import JobId, act_on_ids, database, json_option
from quebec.cli.output import Column, emit_json, error_line, iso, table

F = TypeVar("F", bound=Callable[..., Any])


def _filters(fn: F) -> F:
    fn = click.option("--queue", "queue_name", metavar="NAME", help="Only jobs of this queue.")(fn)
    return click.option("--class", "class_name", metavar="NAME", help="Only jobs of this class.")(fn)


@click.group("failed", short_help="List, retry or discard failed jobs.")
def failed() -> None:
    """Inspect, retry or discard failed jobs."""


@failed.command("list")
@_filters
@json_option
def list_failed(class_name: str | None, queue_name: str | None, as_json: bool) -> int:
    """Failed jobs, oldest first: id, class, queue, error."""
    with database() as (_, db):
        rows = ops.failed_jobs(db, class_name=class_name, queue_name=queue_name)
    if as_json:
        emit_json(
            [
                {
                    "id": r.id,
                    "class_name": r.class_name,
                    "queue_name": r.queue_name,
                    "error": r.error,
                    "created_at": iso(r.created_at),
                }
                for r in rows
            ]
        )
        return 0
    columns = [
        Column("ID", right=True),
        Column("CLASS", flex=True),
        Column("QUEUE", flex=True),
        Column("ERROR", flex=True),
    ]
    table(columns, [(r.id, r.class_name, r.queue_name, error_line(r.error)) for r in rows])
    click.echo(f"{len(rows)} failed job(s)")
    return 0


def _acting(name: str, verb: str, one: Callable[[Any, Sequence[int]], int], every: Callable[..., int]) -> None:
    @failed.command(name)
    @click.argument("ids", nargs=-1, type=JobId())
    @click.option("--all", "every_job", is_flag=True, help="Every failed job (narrow with --class / --queue).")
    @_filters
    @json_option
    def command(
        ids: tuple[int, ...], every_job: bool, class_name: str | None, queue_name: str | None, as_json: bool
    ) -> int:
        if not ids and not every_job:
            raise click.UsageError(f"`failed {name}` needs job ids or --all")
        if ids and every_job:
            raise click.UsageError(f"`failed {name}` takes job ids or --all, not both")
        if ids and (class_name or queue_name):
            raise click.UsageError("--class and --queue narrow --all; with job ids, leave them out")
        with database() as (_, db):
            if ids:
                return act_on_ids(db, ids, one, verb=verb, needs="failed", as_json=as_json)
            count = every(db, class_name=class_name, queue_name=queue_name)
        if as_json:
            emit_json({verb: count})
        else:
            click.echo(f"{verb} {count} job(s)")
        return 0

    command.help = f"{'Retry' if name == 'retry' else 'Discard'} failed jobs: the ids given, or --all of them."


_acting("retry", "retried", ops.retry_failed, ops.retry_all_failed)
_acting("discard", "discarded", ops.discard_failed, ops.discard_all_failed)
