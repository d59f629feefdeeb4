"""`python -m quebec processes list`."""

from __future__ import annotations

import click

from quebec import ops
from quebec.cli.common import database, json_option
from quebec.cli.output import Column, age, emit_json, seconds_between, table


@click.group("processes", short_help="List the registered worker and dispatcher processes.")
def processes() -> None:
    """The processes registered in the database (workers, dispatchers, one-shot runs)."""


@processes.command("list")
@json_option
def list_processes(as_json: bool) -> int:
    """Kind, name, host, pid, heartbeat age and running jobs of every registered process.

    A heartbeat older than process_alive_threshold is marked stale: the process is dead or
    stuck, and the next pruning hands its jobs back."""
    with database() as (settings, db):
        snapshot = ops.process_list(db)
    threshold = settings.process_alive_threshold
    rows = []
    for p in snapshot.processes:
        heartbeat = seconds_between(snapshot.as_of, p.last_heartbeat_at) or 0.0
        rows.append((p, heartbeat, heartbeat > threshold))
    if as_json:
        emit_json(
            [
                {
                    "id": p.id,
                    "kind": p.kind,
                    "name": p.name,
                    "hostname": p.hostname,
                    "pid": p.pid,
                    "supervisor_id": p.supervisor_id,
                    "last_heartbeat_at": p.last_heartbeat_at,
                    "heartbeat_age_seconds": heartbeat,
                    "stale": stale,
                    "running": p.running,
                    "created_at": p.created_at,
                    "metadata": p.metadata,
                }
                for p, heartbeat, stale in rows
            ]
        )
        return 0
    columns = [
        Column("ID", right=True),
        Column("KIND"),
        Column("NAME", flex=True),
        Column("HOST", flex=True),
        Column("PID", right=True),
        Column("HEARTBEAT", right=True),
        Column("RUNNING", right=True),
        Column("QUEUES", flex=True),
    ]
    table(
        columns,
        [
            (
                p.id,
                p.kind,
                p.name,
                p.hostname,
                p.pid,
                f"{age(heartbeat)} ago" + (" (stale)" if stale else ""),
                p.running,
                ",".join(str(q) for q in p.metadata.get("queues", [])) or None,
            )
            for p, heartbeat, stale in rows
        ],
    )
    click.echo(f"{len(rows)} process(es)")
    return 0
