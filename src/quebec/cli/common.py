"""What every CLI command shares: the database opened as Quebec() opens it, the option
types (job ids, states, times), `--json`, and acting on ids one by one so that each id
not acted on is named with its state.

Exit statuses: 0 done; 1 a user or database error (one sentence on stderr: a job that is
not in the state the action needs, a bad URL, an unreachable server); 2 a usage error (an
unknown option, a missing or malformed argument).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, TypeVar

import click

from quebec import ops
from quebec.cli.output import emit_json
from quebec.clock import to_naive_utc, utcnow
from quebec.config import Settings, load_settings
from quebec.store import Database
from quebec.types import JobStatus

# jobs.id is a 64-bit integer on PostgreSQL and MySQL, SQLite's INTEGER too.
MAX_JOB_ID = 2**63 - 1
F = TypeVar("F", bound=Callable[..., Any])


class CommandError(Exception):
    """A user error found by a command (exit status 1): its message is the one sentence."""


@contextmanager
def database() -> Iterator[tuple[Settings, Database]]:
    """Settings and Database exactly as Quebec() builds them (QUEBEC_*, queue.yml, URL,
    table prefix, ssl, pool), so the CLI and the application always open the same tables."""
    settings = load_settings()
    db = Database.from_settings(settings)
    db.connect()
    try:
        yield settings, db
    finally:
        db.dispose()


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON (and nothing else) for scripts.")(fn)


class JobId(click.ParamType):  # type: ignore[type-arg]  # generic from click 8.2 on
    name = "ID"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            number = int(value)
        except ValueError:
            self.fail(f"job id {value!r} is not a number; ids are whole numbers (jobs.id)", param, ctx)
        if not 1 <= number <= MAX_JOB_ID:
            self.fail(f"job id {value} is out of range; ids run from 1 to {MAX_JOB_ID}", param, ctx)
        return number


# A job's status (JobStatus); `claimed`, the rows' word for running, is taken too.
_STATE_NAMES = {**{s.value: s for s in JobStatus}, "claimed": JobStatus.RUNNING}


class State(click.ParamType):  # type: ignore[type-arg]  # generic from click 8.2 on
    name = "STATE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> JobStatus:
        state = _STATE_NAMES.get(str(value).lower())
        if state is None:
            self.fail(f"state {value!r} is not one of {', '.join(_STATE_NAMES)}", param, ctx)
        return state


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class Since(click.ParamType):  # type: ignore[type-arg]  # generic from click 8.2 on
    """`10m`, `2h`, `1d` ago; an ISO 8601 time (naive means UTC, as in every Quebec table);
    or seconds since the epoch."""

    name = "WHEN"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        text = str(value).strip()
        if match := _DURATION.match(text):
            return utcnow() - timedelta(seconds=float(match[1]) * _UNIT[match[2]])
        try:
            return to_naive_utc(datetime.fromisoformat(text))
        except ValueError:
            pass
        try:
            moment = ops.instant(float(text), "--since")
        except ValueError:
            moment = None
        if moment is None:
            self.fail(
                f"{text!r} is not a time; give an age such as 30m, 2h or 1d, an ISO time such as "
                f"2026-12-01T09:00 (UTC unless it names an offset), or seconds since the epoch",
                param,
                ctx,
            )
        return moment


def act_on_ids(
    db: Database,
    job_ids: Sequence[int],
    act: Callable[[Database, Sequence[int]], int],
    *,
    verb: str,
    needs: str,
    as_json: bool,
) -> int:
    """`act` on each id in turn (so that each one not acted on can be named with its state),
    print how many were, and raise CommandError naming the rest."""
    ids = list(dict.fromkeys(job_ids))
    missed = [job_id for job_id in ids if not act(db, [job_id])]
    count = len(ids) - len(missed)
    if as_json:
        emit_json({verb: count})
    else:
        click.echo(f"{verb} {count} job(s)")
    if missed:
        raise CommandError(
            f"{not_in_state(db, missed, needs)}, so {'it was' if len(missed) == 1 else 'they were'} not {verb}"
        )
    return 0


def not_in_state(db: Database, job_ids: Sequence[int], needs: str) -> str:
    """'job 7 is finished, not failed; job 9 does not exist' for ids an action skipped."""
    parts = []
    for job_id in job_ids:
        row = ops.get_job(db, job_id)
        parts.append(f"job {job_id} does not exist" if row is None else f"job {job_id} is {row.state}, not {needs}")
    return "; ".join(parts)
