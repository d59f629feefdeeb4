"""`python -m quebec stats`."""

from __future__ import annotations

import click

from quebec import ops
from quebec.cli.common import database, json_option
from quebec.cli.output import emit_json, iso, seconds_between
from quebec.cli.queues import queue_dict, queue_table
from quebec.types import JobStatus


@click.command("stats", short_help="Counts per state and per queue, and the oldest ready job.")
@json_option
def stats(as_json: bool) -> int:
    """Jobs per state and per queue, and how long the oldest ready job has waited.

    The finished count reads the jobs table (the rest read the execution tables only), so
    on millions of kept finished jobs it is the slow part; `queues list` leaves it out."""
    with database() as (_, db):
        snapshot = ops.queue_stats(db)
    endings = snapshot.endings()
    oldest = snapshot.oldest_ready_at()
    oldest_age = seconds_between(snapshot.as_of, oldest)
    if as_json:
        emit_json(
            {
                "as_of": iso(snapshot.as_of),
                "states": {s.value: n for s, n in snapshot.totals().items()},
                "endings": {s.value: n for s, n in endings.items()},
                "queues": [queue_dict(q, snapshot) for q in snapshot.queues],
                "oldest_ready_at": iso(oldest),
                "oldest_ready_age_seconds": oldest_age,
            }
        )
        return 0
    queue_table(snapshot, totals=True)
    if any(n for s, n in endings.items() if s is not JobStatus.FINISHED):  # a cancelled job is no success
        click.echo("finished jobs ended: " + ", ".join(f"{n} {s}" for s, n in endings.items() if n))
    click.echo(f"as of {snapshot.as_of:%Y-%m-%d %H:%M:%S} UTC")
    return 0
