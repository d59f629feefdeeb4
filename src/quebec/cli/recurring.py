"""`python -m quebec recurring list [--json]`: the recurring tasks, with their next run times.

A next-run function lives in the application's code: the CLI cannot compute such a task's
next run and says so (`problem`).
"""

from __future__ import annotations

import click

from quebec import recurring as tasks
from quebec.cli.common import database, json_option
from quebec.cli.output import Column, emit_json, table


@click.group("recurring", short_help="List recurring tasks and their next runs.")
def recurring() -> None:
    """List recurring tasks (recurring.yml's static ones and those scheduled from Python)."""


@recurring.command("list")
@json_option
def list_tasks(as_json: bool) -> int:
    """Every recurring task: schedule, class, next and last run (UTC), paused."""
    with database() as (_, db):
        listed = tasks.listing(db, {})
    if as_json:
        emit_json(
            [
                {
                    "key": item.task.key,
                    "schedule": item.task.schedule,
                    "class_name": item.task.class_name,
                    "arguments": list(item.task.arguments),
                    "queue_name": item.task.queue_name,
                    "priority": item.task.priority,
                    "static": item.task.static,
                    "paused": item.task.paused_at is not None,
                    "next_run_at": item.next_run,
                    "last_run_at": item.last_run,
                    "problem": item.problem,
                }
                for item in listed
            ]
        )
        return 0
    if not listed:
        click.echo("no recurring tasks")
        return 0
    columns = [
        Column("KEY", flex=True),
        Column("SCHEDULE", flex=True),
        Column("CLASS", flex=True),
        Column("NEXT RUN"),
        Column("LAST RUN"),
        Column("PAUSED"),
        Column("PROBLEM", flex=True),
    ]
    rows = [
        (
            item.task.key,
            item.task.schedule,
            item.task.class_name,
            item.next_run if item.problem is None else "?",
            item.last_run,
            item.task.paused_at is not None,
            item.problem,
        )
        for item in listed
    ]
    table(columns, rows)
    click.echo(f"{len(listed)} task(s)")
    return 0
