"""`python -m quebec queues list|pause|resume`."""

from __future__ import annotations

from collections.abc import Callable

import click

from quebec import ops
from quebec.cli.common import database, json_option
from quebec.cli.output import Column, age, emit_json, seconds_between, table
from quebec.store import Database
from quebec.store.stats import QueueSnapshot, QueueStats
from quebec.types import JobState


@click.group("queues", short_help="List, pause or resume queues.")
def queues() -> None:
    """List, pause or resume queues."""


@queues.command("list")
@json_option
def list_queues(as_json: bool) -> int:
    """Every queue with a job waiting, running or failed, or a pause: its size (ready jobs),
    whether it is paused, and how long its oldest ready job has waited."""
    with database() as (_, db):
        snapshot = ops.queue_stats(db, with_finished=False)  # finished counts read the jobs table: see `stats`
    if as_json:
        emit_json([queue_dict(q, snapshot) for q in snapshot.queues])
        return 0
    queue_table(snapshot, totals=False)
    click.echo(f"{len(snapshot.queues)} queue(s)")
    return 0


def queue_table(snapshot: QueueSnapshot, *, totals: bool) -> None:
    """One row per queue: a count per state, paused, the oldest ready job's wait; `(all)` last with totals."""
    states = [s for s in JobState if snapshot.with_finished or s is not JobState.FINISHED]
    columns = [
        Column("QUEUE", flex=True),
        *(Column(s.value.upper(), right=True) for s in states),
        Column("PAUSED"),
        Column("OLDEST READY", right=True),
    ]
    rows: list[tuple[object, ...]] = [
        (q.name, *(q.counts[s] for s in states), q.paused, age(seconds_between(snapshot.as_of, q.oldest_ready_at)))
        for q in snapshot.queues
    ]
    if totals:
        sums = snapshot.totals()
        oldest = seconds_between(snapshot.as_of, snapshot.oldest_ready_at())
        rows.append(("(all)", *(sums[s] for s in states), None, age(oldest)))
    table(columns, rows)


def queue_dict(queue: QueueStats, snapshot: QueueSnapshot) -> dict[str, object]:
    return {
        "name": queue.name,
        "size": queue.size,
        "paused": queue.paused,
        "counts": {s.value: n for s, n in queue.counts.items()},
        "oldest_ready_at": queue.oldest_ready_at,
        "oldest_ready_age_seconds": seconds_between(snapshot.as_of, queue.oldest_ready_at),
        **({"endings": {s.value: n for s, n in queue.endings.items()}} if snapshot.with_finished else {}),
    }


def _pausing(name: str, paused: bool, act: Callable[[Database, str], bool], help_text: str) -> None:
    @queues.command(name, help=help_text)
    @click.argument("queue")
    @json_option
    def command(queue: str, as_json: bool) -> int:
        with database() as (_, db):
            changed = act(db, queue)
        if as_json:
            emit_json({"queue": queue, "paused": paused, "changed": changed})
        elif changed:
            click.echo(f"{name}d queue {queue!r}")
        else:
            click.echo(f"queue {queue!r} was {'paused already' if paused else 'not paused'}")
        return 0


_pausing("pause", True, ops.pause_queue, "Stop workers claiming the queue's jobs; they stay ready until it is resumed.")
_pausing("resume", False, ops.resume_queue, "Let workers claim the queue's jobs again.")
