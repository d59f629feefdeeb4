"""Batch: a group of jobs tracked together (Solid Queue batches), as the wheel's `quebec.Batch`.

    with qc.batch(description="import", on_finish=ReportJob) as batch:
        for row in rows:
            ImportRowJob.perform_later(qc, row)

Jobs enqueued inside the block join the batch; leaving the block starts it, and when its
last job ends the on_success (no job failed) or on_failure, then on_finish, callback jobs
are enqueued, once. `with batch.enqueue():` adds jobs later, from anywhere (one of its
own jobs, too). Counters follow Solid Queue: a retry is not a new job, a discarded job
counts as completed. Until a batch finishes, its counters are derived from the tables.
"""

from __future__ import annotations

import contextvars
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from quebec.arguments import encode_envelope, format_naive_utc
from quebec.batch_context import current_batch_id
from quebec.errors import BatchAlreadyFinished, EnqueueError
from quebec.function_jobs import FunctionJob
from quebec.job import ActiveJob, BaseClass, JobDescriptor, active_jobs
from quebec.job_ids import new_active_job_id
from quebec.store import batch_completion, batches, held
from quebec.store.batches import BatchRow, NewBatch
from quebec.store.jobs import enqueue_many
from quebec.types import EnqueuedJobs, NewJobs

if TYPE_CHECKING:
    from quebec.store import Database

__all__ = ["Batch", "BatchAlreadyFinished", "current_batch_id", "new_batch"]
T = TypeVar("T")


class Batch:
    """A batch: its row (`id`, `status`, counters, times, `metadata`), `enqueue()`, `reload()`.

    Made by `qc.batch(...)` (persisted on first entry, or when its record is first read),
    `qc.find_batch(id)` or a job's `self.batch`.
    """

    def __init__(
        self,
        qc: Any,
        record: BatchRow | None = None,
        pending_jobs: int = 0,
        live_failed_jobs: int = 0,
        *,
        creation: NewBatch | None = None,
    ) -> None:
        if record is None and creation is None:
            raise TypeError("Batch(qc, record=...) needs a record (or creation=): make batches with qc.batch(...)")
        self._qc = qc
        self._record = record
        self._pending = pending_jobs
        self._live_failed = live_failed_jobs
        self._creation = creation
        self._frames: list[tuple[contextvars.Token[int | None], held.Frame | None]] = []

    # -- joining ---------------------------------------------------------------------------
    def __enter__(self) -> Batch:
        db: Database = self._qc.db
        opened = held.held_for(db) is None
        frame = held.hold(db) if opened else None
        try:
            row = self._row()
        except BaseException:
            if frame is not None:
                frame[0].rollback()
                held.release(frame[1])
            raise
        self._frames.append((current_batch_id.set(row.id), frame))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Leaving the block starts the batch (if it is not yet); the outermost block of this
        Quebec commits what was enqueued inside, or rolls it back when an exception escapes."""
        token, frame = self._frames.pop()
        current_batch_id.reset(token)
        try:
            if exc_type is None and not self._frames and self._row().enqueued_at is None:
                self._run(batch_completion.start, self._row().id)
            if frame is not None:
                if exc_type is None:
                    frame[0].commit()
                else:
                    frame[0].rollback()
        except BaseException:
            if frame is not None and exc_type is None:
                frame[0].rollback()
            raise
        finally:
            if frame is not None:
                held.release(frame[1])
        if exc_type is None:
            self.reload()

    def enqueue(self) -> Batch:
        """Context manager that makes enqueued jobs join this batch::

            with batch.enqueue():
                MoreWork.perform_later(qc, item)

        Raises BatchAlreadyFinished if the batch has already finished (an enqueue racing
        with its completion raises the same from perform_later itself).
        """
        if self.reload().finished:
            raise BatchAlreadyFinished(f"Can't add jobs to batch {self.id}: it has already finished")
        return self

    def reload(self) -> Batch:
        """Re-read the row and live counters from the database."""
        found = self._run(batches.find, batch_id=self._row().id, read=True)
        if found is None:
            raise LookupError(f"batch {self.id} no longer exists (cleared by clear_finished_batches, or rolled back)")
        self._record, self._pending, self._live_failed = found, found.pending_jobs, found.live_failed_jobs
        return self

    def _row(self) -> BatchRow:
        if self._record is None:
            assert self._creation is not None
            batch_id = self._run(batches.create, self._creation)
            self._record = self._run(batches.find, batch_id=batch_id, read=True)
            assert self._record is not None
        return self._record

    def _run(self, fn: Callable[..., T], /, *args: Any, read: bool = False, **kwargs: Any) -> T:
        """`fn(tx, ...)` in the transaction a block of this Quebec holds, else in its own
        (a read one when `read`: on SQLite it does not take the write lock)."""
        db: Database = self._qc.db
        open_ = held.held_for(db)
        if open_ is not None:
            return open_.run(fn, *args, **kwargs)
        return db.read(fn, *args, **kwargs) if read else db.transact(fn, *args, **kwargs)

    # -- the row -----------------------------------------------------------------------------
    @property
    def id(self) -> int:
        return self._row().id

    @property
    def active_job_batch_id(self) -> str | None:
        return self._row().active_job_batch_id

    @property
    def description(self) -> str | None:
        return self._row().description

    @property
    def metadata(self) -> dict[str, Any]:
        text = self._row().metadata
        loaded = json.loads(text) if text else {}
        return loaded if isinstance(loaded, dict) else {}

    @property
    def created_at(self) -> datetime | None:
        return self._row().created_at

    @property
    def updated_at(self) -> datetime | None:
        return self._row().updated_at

    @property
    def enqueued_at(self) -> datetime | None:
        return self._row().enqueued_at

    @property
    def finished_at(self) -> datetime | None:
        return self._row().finished_at

    @property
    def failed_at(self) -> datetime | None:
        return self._row().failed_at

    @property
    def total_jobs(self) -> int:
        return self._row().total_jobs

    @property
    def pending_jobs(self) -> int:
        """Outstanding attempts (clamped: a retry and its previous attempt, written by another
        writer, may briefly both count)."""
        return 0 if self.finished else min(self._pending, self.total_jobs)

    @property
    def failed_jobs(self) -> int:
        row = self._row()
        return row.failed_jobs if self.finished else min(self._live_failed, row.total_jobs)

    @property
    def completed_jobs(self) -> int:
        row = self._row()
        if self.finished:
            return row.completed_jobs
        return max(row.total_jobs - self.pending_jobs - self.failed_jobs, 0)

    @property
    def progress_percentage(self) -> float:
        total = self.total_jobs
        return 0.0 if total == 0 else round((self.completed_jobs + self.failed_jobs) * 100.0 / total, 2)  # as the wheel

    @property
    def enqueued(self) -> bool:
        return self._row().enqueued_at is not None

    @property
    def finished(self) -> bool:
        return self._row().finished_at is not None

    @property
    def failed(self) -> bool:
        return self._row().failed_at is not None

    @property
    def succeeded(self) -> bool:
        return self.finished and not self.failed

    @property
    def status(self) -> str:
        """``"pending"``, ``"enqueued"``, ``"completed"`` or ``"failed"``."""
        if self.finished:
            return "failed" if self.failed else "completed"
        return "enqueued" if self.enqueued else "pending"

    def __repr__(self) -> str:
        return f"<Batch id={self.id} status={self.status!r} total_jobs={self.total_jobs}>"


def batch_route(db: Database, jobs: Sequence[ActiveJob]) -> Callable[[NewJobs], EnqueuedJobs] | None:
    """How an enqueue inside a batch block is written: into the block's transaction, into the
    batch (each job's `batch_id` set); None outside every block (the usual transaction)."""
    batch_id, open_ = current_batch_id.get(), held.held_for(db)
    if batch_id is None and open_ is None:
        return None

    def insert(rows: NewJobs) -> EnqueuedJobs:
        if batch_id is None:
            assert open_ is not None
            return open_.run(enqueue_many, rows)
        if open_ is None:
            enqueued = db.transact(batches.enqueue_into, batch_id, rows)
        else:
            enqueued = open_.run(batches.enqueue_into, batch_id, rows)
        for job in jobs:
            job._batch_id = batch_id
        return enqueued

    return insert


def new_batch(
    *,
    now: datetime,
    forced_queue: str | None,
    description: str | None,
    on_finish: Any,
    on_success: Any,
    on_failure: Any,
    metadata: Mapping[str, Any] | None,
    extra_metadata: Mapping[str, Any],
) -> NewBatch:
    """What qc.batch(...) persists, every argument checked now (one sentence per mistake)."""
    if description is not None and not isinstance(description, str):
        raise EnqueueError(f"qc.batch(description=...) takes a string or None, got {description!r}")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise EnqueueError(f"qc.batch(metadata=...) takes a dict of JSON values or None, got {metadata!r}")
    merged = {**(metadata or {}), **extra_metadata}
    try:
        metadata_json = json.dumps(merged, allow_nan=False) if metadata is not None or merged else None
    except (TypeError, ValueError) as exc:
        raise EnqueueError(
            f"qc.batch metadata {merged!r} is not JSON ({exc}); pass str, int, float, bool, None, lists and dicts"
        ) from None
    return NewBatch(
        active_job_batch_id=str(uuid.uuid4()),
        description=description,
        on_finish=_descriptor("on_finish", on_finish, now, forced_queue),
        on_success=_descriptor("on_success", on_success, now, forced_queue),
        on_failure=_descriptor("on_failure", on_failure, now, forced_queue),
        metadata=metadata_json,
    )


def _descriptor(role: str, value: Any, now: datetime, forced_queue: str | None) -> str | None:
    """A callback as the wheel stores it: the job's class, arguments and options as JSON."""
    if value is None:
        return None
    if isinstance(value, FunctionJob):  # @qc.job
        value = value.job_class
    if isinstance(value, type) and issubclass(value, BaseClass):
        job = value.build()
    elif isinstance(value, JobDescriptor) and isinstance(getattr(value, "job_class", None), type):
        job = value if isinstance(value, ActiveJob) else active_jobs([value])[0]
    else:
        raise EnqueueError(
            f"qc.batch({role}=...) takes a job class (a quebec.BaseClass subclass, or @qc.job) or Job.build(...), "
            f"got {value!r}; pass e.g. {role}=ReportJob or {role}=ReportJob.build(arg)"
        )
    job.resolve(now=now, forced_queue=forced_queue)
    assert job.queue_name is not None and job.priority is not None and job.scheduled_at is not None
    active_job_id = new_active_job_id()
    envelope = encode_envelope(
        class_name=job.class_name,
        active_job_id=active_job_id,
        queue_name=job.queue_name,
        priority=job.priority,
        args=job.args,
        kwargs=job.kwargs,
        enqueued_at=now,
    )
    later = job.scheduled_at > now
    descriptor = {
        "arguments": json.loads(envelope)["arguments"]["arguments"],
        "enqueued_at": None,
        "exception_executions": {},
        "executions": 0,
        "job_class": job.class_name,
        "job_id": active_job_id,
        "locale": "en",
        "priority": job.priority,
        "provider_job_id": "",
        "queue_name": job.queue_name,
        "scheduled_at": format_naive_utc(job.scheduled_at) + "Z" if later else None,
        "timezone": "UTC",
    }
    return json.dumps(descriptor, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
