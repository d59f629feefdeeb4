"""The Solid Queue tables, laid out exactly as the Rust Quebec 0.4.2 creates them.

Names, columns and index names match what the wheel writes (`spec/schema.md`), so
both implementations can share one database. Column *types* follow the wheel too:
SQLite stores naive-UTC timestamps as text in a `datetime_text` column, PostgreSQL
uses `timestamp without time zone`. On MySQL we use DATETIME(6): the wheel's plain
DATETIME would round away the sub-second order of jobs enqueued together, and
`jobs.arguments` is MEDIUMTEXT: the wheel's TEXT (64 KB) made arguments near that size
fail to record their failure once the failure counters grew them (docs/limits.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
    text,
)
from sqlalchemy.dialects.mysql import DATETIME as MYSQL_DATETIME
from sqlalchemy.dialects.mysql import MEDIUMTEXT
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[object]):
    """A naive UTC timestamp; SQLite names it `datetime_text`, as the wheel does."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect):  # type: ignore[no-untyped-def]
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(MYSQL_DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())


@compiles(UTCDateTime, "sqlite")
def _sqlite_datetime(type_, compiler, **kw):  # type: ignore[no-untyped-def]
    return "datetime_text"


# SQLite only autoincrements an INTEGER PRIMARY KEY; elsewhere ids are 64-bit.
_ID = BigInteger().with_variant(Integer(), "sqlite")
# PostgreSQL and SQLite take unbounded varchar; MySQL needs a length to index it, and a
# binary collation so that queue "mail" is not queue "Mail" (its default compares case-blind).
_STR = String().with_variant(String(255, collation="utf8mb4_bin"), "mysql", "mariadb")

# Job arguments: MySQL's TEXT holds 64 KB, MEDIUMTEXT 16 MB (the other backends: unbounded).
_ARGUMENTS = Text().with_variant(MEDIUMTEXT(), "mysql", "mariadb")


def _id() -> Column[int]:
    return Column("id", _ID, primary_key=True, autoincrement=True)


def _ts(name: str, nullable: bool = False) -> Column[object]:
    return Column(name, UTCDateTime(), nullable=nullable)


@dataclass(frozen=True)
class Tables:
    prefix: str
    metadata: MetaData
    jobs: Table
    ready_executions: Table
    claimed_executions: Table
    blocked_executions: Table
    scheduled_executions: Table
    failed_executions: Table
    recurring_executions: Table
    recurring_tasks: Table
    processes: Table
    semaphores: Table
    pauses: Table
    batches: Table
    batch_executions: Table
    schema_migrations: Table
    rate_limits: Table
    unique_jobs: Table
    job_results: Table

    @property
    def execution_tables(self) -> tuple[Table, ...]:
        return (
            self.ready_executions,
            self.claimed_executions,
            self.blocked_executions,
            self.scheduled_executions,
            self.failed_executions,
        )


def _not_null(column: str) -> dict[str, Any]:
    """Partial-index options for SQLite and PostgreSQL; MySQL has no partial indexes."""
    where = text(f"{column} IS NOT NULL")
    return {"sqlite_where": where, "postgresql_where": where}


def build_tables(prefix: str) -> Tables:
    """Table objects for one (already validated) prefix."""
    md = MetaData()
    p = prefix
    kw: dict[str, Any] = {"sqlite_autoincrement": True, "mysql_charset": "utf8mb4"}

    def job_fk_plain() -> Column[int]:  # not unique: a retry's new row may take over the key
        return Column("job_id", BigInteger, ForeignKey(f"{p}_jobs.id", ondelete="CASCADE"), nullable=False)

    def job_fk() -> Column[int]:
        return Column("job_id", BigInteger, ForeignKey(f"{p}_jobs.id", ondelete="CASCADE"), nullable=False, unique=True)

    jobs = Table(
        f"{p}_jobs",
        md,
        _id(),
        Column("queue_name", _STR, nullable=False),
        Column("class_name", _STR, nullable=False),
        Column("arguments", _ARGUMENTS),
        Column("priority", Integer, nullable=False, server_default="0"),
        Column("active_job_id", _STR),
        _ts("scheduled_at", True),
        _ts("finished_at", True),
        Column("concurrency_key", _STR),
        _ts("created_at"),
        _ts("updated_at"),
        Column("batch_id", BigInteger),
        Index(f"idx_{p}_jobs_queue_priority", "queue_name", "priority"),
        Index(f"idx_{p}_jobs_class_name", "class_name"),
        # Partial where the database can: new jobs have neither, so enqueue skips two index
        # writes per job, and finishing a job adds one entry instead of moving one. Every
        # query on these columns (`finished_at < ?`, `batch_id = ?`) implies IS NOT NULL.
        Index(f"idx_{p}_jobs_finished_at", "finished_at", **_not_null("finished_at")),
        Index(f"idx_{p}_jobs_batch_id", "batch_id", **_not_null("batch_id")),
        **kw,
    )
    recurring_tasks = Table(
        f"{p}_recurring_tasks",
        md,
        _id(),
        Column("key", _STR, nullable=False, unique=True),
        Column("schedule", _STR, nullable=False),
        Column("command", _STR),
        Column("class_name", _STR),
        Column("arguments", Text),
        Column("queue_name", _STR),
        Column("priority", Integer),
        Column("static", Boolean, nullable=False, server_default=false()),
        Column("description", Text),
        _ts("created_at"),
        _ts("updated_at"),
        **kw,
    )
    processes = Table(
        f"{p}_processes",
        md,
        _id(),
        Column("kind", _STR, nullable=False),
        _ts("last_heartbeat_at"),
        Column("supervisor_id", BigInteger),
        Column("pid", Integer, nullable=False),
        Column("hostname", _STR),
        Column("metadata", Text),
        _ts("created_at"),
        Column("name", _STR, nullable=False),
        Index(f"idx_{p}_processes_kind", "kind"),
        Index(f"idx_{p}_processes_last_heartbeat", "last_heartbeat_at"),
        **kw,
    )
    semaphores = Table(
        f"{p}_semaphores",
        md,
        _id(),
        Column("key", _STR, nullable=False, unique=True),
        Column("value", Integer, nullable=False, server_default="0"),
        _ts("expires_at"),
        _ts("created_at"),
        _ts("updated_at"),
        Index(f"idx_{p}_semaphores_key_value", "key", "value"),
        Index(f"idx_{p}_semaphores_expires_at", "expires_at"),
        **kw,
    )
    pauses = Table(
        f"{p}_pauses",
        md,
        _id(),
        Column("queue_name", _STR, nullable=False, unique=True),
        _ts("created_at"),
        **kw,
    )
    batches = Table(
        f"{p}_batches",
        md,
        _id(),
        Column("active_job_batch_id", _STR),
        Column("description", _STR),
        Column("on_finish", Text),
        Column("on_success", Text),
        Column("on_failure", Text),
        Column("metadata", Text),
        Column("total_jobs", Integer, nullable=False, server_default="0"),
        Column("completed_jobs", Integer, nullable=False, server_default="0"),
        Column("failed_jobs", Integer, nullable=False, server_default="0"),
        _ts("enqueued_at", True),
        _ts("finished_at", True),
        _ts("failed_at", True),
        _ts("created_at"),
        _ts("updated_at"),
        Index(f"idx_{p}_batches_active_job_batch_id", "active_job_batch_id", unique=True),
        Index(f"idx_{p}_batches_finished_at", "finished_at"),
        **kw,
    )
    ready = Table(
        f"{p}_ready_executions",
        md,
        _id(),
        job_fk(),
        Column("queue_name", _STR, nullable=False),
        Column("priority", Integer, nullable=False, server_default="0"),
        _ts("created_at"),
        Index(f"idx_{p}_ready_executions_queue_priority_job", "queue_name", "priority", "job_id"),
        Index(f"idx_{p}_ready_executions_priority_job", "priority", "job_id"),
        **kw,
    )
    claimed = Table(
        f"{p}_claimed_executions",
        md,
        _id(),
        job_fk(),
        Column("process_id", BigInteger),
        _ts("created_at"),
        Index(f"idx_{p}_claimed_executions_process_job", "process_id", "job_id"),
        **kw,
    )
    blocked = Table(
        f"{p}_blocked_executions",
        md,
        _id(),
        job_fk(),
        Column("queue_name", _STR, nullable=False),
        Column("priority", Integer, nullable=False, server_default="0"),
        Column("concurrency_key", _STR, nullable=False),
        _ts("expires_at"),
        _ts("created_at"),
        Index(f"idx_{p}_blocked_executions_key_priority_job", "concurrency_key", "priority", "job_id"),
        Index(f"idx_{p}_blocked_executions_expires_at_key", "expires_at", "concurrency_key"),
        **kw,
    )
    scheduled = Table(
        f"{p}_scheduled_executions",
        md,
        _id(),
        job_fk(),
        Column("queue_name", _STR, nullable=False),
        Column("priority", Integer, nullable=False, server_default="0"),
        _ts("scheduled_at"),
        _ts("created_at"),
        Index(f"idx_{p}_scheduled_executions_dispatch", "scheduled_at", "priority", "job_id"),
        **kw,
    )
    failed = Table(
        f"{p}_failed_executions",
        md,
        _id(),
        job_fk(),
        Column("error", Text),
        _ts("created_at"),
        **kw,
    )
    recurring_executions = Table(
        f"{p}_recurring_executions",
        md,
        _id(),
        job_fk(),
        Column("task_key", _STR, nullable=False),
        _ts("run_at"),
        _ts("created_at"),
        Index(f"index_{p}_recurring_executions_on_task_key_and_run_at", "task_key", "run_at", unique=True),
        **kw,
    )
    batch_executions = Table(
        f"{p}_batch_executions",
        md,
        _id(),
        job_fk(),
        Column("batch_id", BigInteger, ForeignKey(f"{p}_batches.id", ondelete="CASCADE"), nullable=False),
        _ts("created_at"),
        Index(f"idx_{p}_batch_executions_batch_id", "batch_id"),
        **kw,
    )
    # Ours, not the wheel's: which schema version this prefix is at (see migrate.py).
    schema_migrations = Table(
        f"{p}_schema_migrations",
        md,
        Column("version", Integer, primary_key=True, autoincrement=False),
        _ts("applied_at"),
        **kw,
    )
    # Ours: the sliding log of recent starts per rate-limit key (store/rate_limits.py), one
    # row per key, locked while a start is counted. The wheel keeps fixed windows in semaphores.
    rate_limits = Table(
        f"{p}_rate_limits",
        md,
        _id(),
        Column("key", _STR, nullable=False, unique=True),
        Column("starts", Text, nullable=False),
        _ts("updated_at"),
        **kw,
    )
    # Ours: unique jobs. The UNIQUE key (a SHA-256 of class and unique_key) is what refuses
    # a duplicate, whichever process enqueues it; expires_at NULL = held until the job finishes.
    unique_jobs = Table(
        f"{p}_unique_jobs",
        md,
        _id(),
        Column("key", String(64), nullable=False, unique=True),
        job_fk_plain(),
        _ts("expires_at", True),
        _ts("created_at"),
        Index(f"idx_{p}_unique_jobs_job_id", "job_id"),
        **kw,
    )
    # Ours, not the wheel's (schema version 2): how a job ended when "finished" does not say
    # it all, and what perform returned. Keyed by job id without a foreign key: under
    # preserve_finished_jobs=False the job row is deleted and the result must outlive it.
    job_results = Table(
        f"{p}_job_results",
        md,
        Column("job_id", BigInteger, primary_key=True, autoincrement=False),
        Column("status", String(16), nullable=False),
        Column("result", _ARGUMENTS),
        Column("next_job_id", BigInteger),
        _ts("created_at"),
        Index(f"idx_{p}_job_results_created_at", "created_at"),
        mysql_charset="utf8mb4",
    )
    return Tables(
        prefix=p,
        metadata=md,
        jobs=jobs,
        ready_executions=ready,
        claimed_executions=claimed,
        blocked_executions=blocked,
        scheduled_executions=scheduled,
        failed_executions=failed,
        recurring_executions=recurring_executions,
        recurring_tasks=recurring_tasks,
        processes=processes,
        semaphores=semaphores,
        pauses=pauses,
        batches=batches,
        batch_executions=batch_executions,
        schema_migrations=schema_migrations,
        rate_limits=rate_limits,
        unique_jobs=unique_jobs,
        job_results=job_results,
    )
