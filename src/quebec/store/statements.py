"""The statements of the hot path (claim, finish), built once per Database.

Building a SQLAlchemy statement cost more than running it on a local server: every claim
built its CTE again, and every finish rendered an IN list of a few hundred placeholders.
Here each is built once, with its variable parts bound (the queue, the limit, the id list
as one parameter where the database takes one: `Dialect.ids_in`), so SQLAlchemy finds it
in its compiled cache and the driver sends the same text every time.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Delete,
    Integer,
    Select,
    Table,
    Update,
    bindparam,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.sql.elements import ColumnElement

from quebec.dialects import Dialect
from quebec.schema import Tables
from quebec.schema.tables import UTCDateTime
from quebec.store.rows import CLAIMED_JOB_COLUMNS

# The escape character of a queue-prefix LIKE pattern (like_prefix()).
_ESCAPE = "/"


class QueueMatch(Enum):
    """How a claim names its queues: all of them, one by name, or a `prefix*` pattern."""

    ALL = "all"
    EXACT = "exact"
    PREFIX = "prefix"


def queue_match(pattern: str | None) -> tuple[QueueMatch, dict[str, Any]]:
    """A queue pattern as the kind of claim statement to run and its `queue` parameter."""
    if pattern is None:
        return QueueMatch.ALL, {}
    if pattern.endswith("*"):
        return QueueMatch.PREFIX, {"queue": like_prefix(pattern[:-1])}
    return QueueMatch.EXACT, {"queue": pattern}


def like_prefix(prefix: str) -> str:
    """A LIKE pattern matching names that start with `prefix`, its wildcards taken literally."""
    escaped = prefix.replace(_ESCAPE, _ESCAPE * 2).replace("%", _ESCAPE + "%").replace("_", _ESCAPE + "_")
    return escaped + "%"


def unpaused(tables: Tables) -> ColumnElement[bool]:
    """A ready row whose queue is not paused."""
    return tables.ready_executions.c.queue_name.not_in(select(tables.pauses.c.queue_name).scalar_subquery())


def matching(column: ColumnElement[Any], match: QueueMatch, value: Any) -> ColumnElement[bool]:
    """`column` against a queue_match() value (or a bound parameter standing for it)."""
    condition: ColumnElement[bool] = (
        column == value if match is QueueMatch.EXACT else column.like(value, escape=_ESCAPE)
    )
    return condition


def queue_condition(column: ColumnElement[Any], pattern: str) -> ColumnElement[bool]:
    """`column` names a queue that `pattern` (a name, or `prefix*`) matches, the value inlined."""
    match, params = queue_match(pattern)
    return matching(column, match, params["queue"])


def _claimed_columns(tables: Tables) -> list[Column[Any]]:
    """The jobs columns a claim reads back (store.rows.claimed_job)."""
    return [tables.jobs.c[name] for name in CLAIMED_JOB_COLUMNS]


def _index_on(table: Table, *columns: str) -> str:
    """The name of `table`'s index on exactly `columns`."""
    for index in table.indexes:
        if tuple(c.name for c in index.columns) == columns and index.name is not None:
            return str(index.name)
    raise LookupError(f"{table.name} has no index on {columns}")


class Statements:
    """Claim and finish statements for one set of tables on one database."""

    def __init__(self, tables: Tables, dialect: Dialect) -> None:
        self._dialect = dialect
        ready, claims, jobs = tables.ready_executions, tables.claimed_executions, tables.jobs
        claimed = _claimed_columns(tables)
        self.pick: dict[QueueMatch, Select[tuple[int]]] = {}
        # The pick for a claim made a statement a step (MySQL): each ready row's own id, so
        # the delete that follows finds the rows by primary key (by job_id, InnoDB scanned
        # the table and waited for rows another claim had locked), joined to its job, so
        # the claim needs no second read for the jobs.
        self.pick_jobs: dict[QueueMatch, Select[Any]] = {}
        self.claim_in_one: dict[QueueMatch, Select[Any]] = {}
        # One writer at a time (SQLite): nobody can take a row between the pick and the
        # delete, so the delete picks its own rows.
        self.take_picked: dict[QueueMatch, Delete] = {}
        for match in QueueMatch:
            stmt = select(ready.c.job_id).where(unpaused(tables))
            if match is not QueueMatch.ALL:
                stmt = stmt.where(matching(ready.c.queue_name, match, bindparam("queue")))
            ordered = stmt.order_by(ready.c.priority, ready.c.job_id).limit(bindparam("limit", type_=Integer()))
            if match is not QueueMatch.EXACT:  # one queue: its (queue, priority, job) index is in order
                ordered = dialect.in_index_order(ordered, ready, _index_on(ready, "priority", "job_id"))
            self.pick[match] = dialect.lock_skip_locked(ordered)
            self.pick_jobs[match] = dialect.lock_skip_locked(
                ordered.with_only_columns(ready.c.id.label("ready_id"), *claimed).join_from(
                    ready, jobs, jobs.c.id == ready.c.job_id
                )
            )
            if dialect.supports_modifying_cte:
                self.claim_in_one[match] = self._claim_cte(tables, self.pick[match])
            if dialect.single_writer:
                self.take_picked[match] = (
                    delete(ready)  # type: ignore[assignment]
                    .where(ready.c.job_id.in_(self.pick[match]))
                    .returning(ready.c.job_id)
                )
        # Where-clauses for Dialect.delete_returning, with the id list bound (ids()).
        self.ready_of_jobs: ColumnElement[bool] = dialect.ids_in(ready.c.job_id)
        self.insert_claims = insert(claims)
        self.jobs_by_id: Select[Any] = (
            select(*claimed).where(dialect.ids_in(jobs.c.id)).order_by(jobs.c.priority, jobs.c.id)
        )
        self.claims_of_process: ColumnElement[bool] = dialect.ids_in(claims.c.job_id) & (
            claims.c.process_id == bindparam("process_id")
        )
        self.mark_finished: Update = (
            update(jobs)
            .where(dialect.ids_in(jobs.c.id))
            .values(finished_at=bindparam("now", type_=UTCDateTime()), updated_at=bindparam("now"))
        )
        self.delete_jobs: Delete = delete(jobs).where(dialect.ids_in(jobs.c.id))

    def _claim_cte(self, tables: Tables, pick: Select[tuple[int]]) -> Select[Any]:
        """ready → claimed in one statement: pick, delete the ready rows, insert the claims,
        return the jobs (in claim order)."""
        ready, claims, jobs = tables.ready_executions, tables.claimed_executions, tables.jobs
        picked = pick.cte("picked")
        deleted = (
            delete(ready)
            .where(self._dialect.in_subquery(ready.c.job_id, select(picked.c.job_id)))
            .returning(ready.c.job_id)
            .cte("deleted")
        )
        inserted = (
            insert(claims)
            .from_select(
                ["job_id", "process_id", "created_at"],
                select(
                    deleted.c.job_id,
                    bindparam("process_id", type_=BigInteger()),
                    bindparam("now", type_=UTCDateTime()),
                ),
            )
            .returning(claims.c.job_id)
            .cte("inserted")
        )
        return (
            select(*_claimed_columns(tables))
            .join_from(jobs, inserted, inserted.c.job_id == jobs.c.id)
            .order_by(jobs.c.priority, jobs.c.id)
        )

    def ids(self, ids: Sequence[int], **more: Any) -> dict[str, Any]:
        """The parameters of a statement built on Dialect.ids_in: the id list, and `more`."""
        return {"ids": self._dialect.ids_value(ids), **more}
