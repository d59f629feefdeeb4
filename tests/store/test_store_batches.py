"""store.batches / store.batch_completion: joining, finishing once, callbacks, sweep, clear."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select, text
from store_support import SharedTables, claimed_ids, clock_of, count_rows, new_job, register

from quebec.errors import BatchAlreadyFinished
from quebec.store import Database, batch_completion, batches
from quebec.store.batches import NewBatch
from quebec.types import NewJobs


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedTables]:
    shared = SharedTables(tmp_path_factory.mktemp("store"))
    yield shared
    shared.close()


@pytest.fixture
def db(backend: str, tables: SharedTables) -> Database:
    return tables.fresh(backend)


def _descriptor(role: str, **extra: object) -> str:
    return json.dumps({"job_class": "Callback", "arguments": [role], "queue_name": "default", "priority": 0, **extra})


def _batch(db: Database, jobs: int, **callbacks: str) -> tuple[int, list[int]]:
    """A started batch of `jobs` jobs; its id and theirs."""
    batch_id = db.transact(batches.create, NewBatch(active_job_batch_id=f"uuid-{time.monotonic_ns()}", **callbacks))
    ids = db.transact(batches.enqueue_into, batch_id, NewJobs.of([new_job(db) for _ in range(jobs)])).ids
    db.transact(batch_completion.start, batch_id)
    return batch_id, list(ids)


def _callback_roles(db: Database) -> list[str]:
    jobs = db.tables.jobs
    rows = db.read(
        lambda tx: list(tx.conn.execute(select(jobs.c.arguments).where(jobs.c.class_name == "Callback")).scalars())
    )
    return [json.loads(r)["arguments"]["arguments"][0] for r in rows]


def _waiting_for_a_lock(db: Database) -> bool:
    """Whether some transaction waits for a row lock (PostgreSQL, MariaDB); False elsewhere."""
    queries = {
        "postgresql": "SELECT COUNT(*) FROM pg_locks WHERE NOT granted",
        "mysql": "SELECT COUNT(*) FROM information_schema.INNODB_LOCK_WAITS",
    }
    sql = queries.get(db.dialect.name)
    if sql is None:
        return False
    with db.engine.connect() as conn:
        return bool(conn.execute(text(sql)).scalar())


def test_two_flushes_ending_the_last_two_jobs_at_once_finish_the_batch_once(db: Database) -> None:
    batch_id, (a, b) = _batch(db, 2, on_finish=_descriptor("finish"), on_success=_descriptor("success"))
    pid = register(db)
    claimed_ids(db, pid)
    # Flush 1 writes job a and stays open; flush 2 writes job b meanwhile. Without the row
    # lock each would see the other's tracking row still there and neither would finish.
    conn = db.engine.connect()
    db.dialect.begin_write(conn)
    first = batch_completion.finish_many(db.join(conn), members={a: batch_id}, process_id=pid, job_ids=[a])
    results: list[object] = []

    def second() -> None:
        done = db.transact(batch_completion.finish_many, members={b: batch_id}, process_id=pid, job_ids=[b])
        results.append(done)

    thread = threading.Thread(target=second)
    thread.start()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not _waiting_for_a_lock(db) and db.dialect.name != "sqlite":
        time.sleep(0.01)
    conn.commit()
    conn.close()
    thread.join(30)
    assert not thread.is_alive() and first.job_ids == (a,) and len(results) == 1
    row = db.read(batches.find, batch_id=batch_id)
    assert row is not None and row.finished_at is not None and (row.completed_jobs, row.failed_jobs) == (2, 0)
    assert _callback_roles(db) == ["success", "finish"]
    assert count_rows(db, "batch_executions") == 0


def test_a_finished_batch_takes_no_more_jobs(db: Database) -> None:
    batch_id, _ = _batch(db, 0)
    assert db.read(batches.find, batch_id=batch_id).finished_at is not None  # type: ignore[union-attr]
    with pytest.raises(BatchAlreadyFinished, match="already finished"):
        db.transact(batches.enqueue_into, batch_id, NewJobs.of([new_job(db)]))
    with pytest.raises(BatchAlreadyFinished, match="does not exist"):
        db.transact(batches.enqueue_into, batch_id + 1000, NewJobs.of([new_job(db)]))
    assert count_rows(db, "jobs") == 0


def test_a_callback_that_cannot_be_read_is_skipped_and_the_batch_still_finishes(db: Database) -> None:
    batch_id, _ = _batch(db, 0, on_finish="{not json", on_success=_descriptor("success"))
    row = db.read(batches.find, batch_id=batch_id)
    assert row is not None and row.finished_at is not None
    assert _callback_roles(db) == ["success"]


def test_a_delayed_callback_is_scheduled_for_its_time(db: Database) -> None:
    later = db.clock.now() + timedelta(hours=1)
    stamp = later.isoformat() + "123Z"  # the wheel's nanoseconds
    _batch(db, 0, on_finish=_descriptor("finish", scheduled_at=stamp))
    assert count_rows(db, "scheduled_executions") == 1


def test_clear_finished_deletes_at_most_batch_size_and_keeps_failed_ones(db: Database) -> None:
    for _ in range(3):
        _batch(db, 0)
    failed_id, (job,) = _batch(db, 1)
    pid = register(db)
    claimed_ids(db, pid)
    from quebec.store import claimed
    from quebec.types import ErrorInfo

    db.transact(
        batch_completion.fail_many,
        members={job: failed_id},
        process_id=pid,
        failures=[claimed.Failure(job, ErrorInfo("E", "m"))],
    )
    assert db.read(batches.find, batch_id=failed_id).failed_at is not None  # type: ignore[union-attr]
    clock_of(db).advance(10)
    cutoff = db.clock.now()
    assert db.transact(batches.clear_finished, finished_before=cutoff, batch_size=2) == 2
    assert db.transact(batches.clear_finished, finished_before=cutoff, batch_size=2) == 1
    assert db.transact(batches.clear_finished, finished_before=cutoff, batch_size=2) == 0
    assert count_rows(db, "batches") == 1


def test_a_member_retried_out_of_a_finished_batch_does_not_rejoin_it(db: Database) -> None:
    from quebec.store import claimed, failed
    from quebec.types import ErrorInfo

    batch_id, (job,) = _batch(db, 1)
    pid = register(db)
    claimed_ids(db, pid)
    failure = [claimed.Failure(job, ErrorInfo("E", "m"))]
    db.transact(batch_completion.fail_many, members={job: batch_id}, process_id=pid, failures=failure)
    assert db.read(batches.find, batch_id=batch_id).failed_at is not None  # type: ignore[union-attr]
    db.transact(failed.retry_failed, job_ids=[job])  # an operator's retry
    claimed_ids(db, pid)
    next_run = new_job(db)
    moved = db.transact(batch_completion.retry_many, members={job: batch_id}, process_id=pid, next_runs={job: next_run})
    assert list(moved) == [job]
    assert count_rows(db, "batch_executions") == 0
    row = db.read(batches.find, batch_id=batch_id)
    assert row is not None and (row.total_jobs, row.failed_jobs) == (1, 1)


def test_a_member_failed_by_pruning_ends_for_its_batch_in_that_transaction(db: Database) -> None:
    from quebec.store import processes

    batch_id, (job,) = _batch(db, 1, on_finish=_descriptor("finish"))
    pid = register(db)
    claimed_ids(db, pid)
    pruned = db.transact(processes.prune_dead, stale_before=db.clock.now(), dead_ids=[pid], at_most_once=["ExampleJob"])
    assert pruned.failed == (job,)
    row = db.read(batches.find, batch_id=batch_id)
    assert row is not None and row.failed_at is not None and row.failed_jobs == 1
    assert _callback_roles(db) == ["finish"]


def test_an_enqueue_into_a_batch_a_flush_is_finishing_waits_for_it_instead_of_deadlocking(db: Database) -> None:
    batch_id, (job,) = _batch(db, 1)
    be = db.tables.batch_executions
    # A flush ending the batch's last job: it locks the batch row, drops the job's row...
    flush = db.engine.connect()
    db.dialect.begin_write(flush)
    tx = db.join(flush)
    tx.conn.execute(select(db.tables.batches.c.id).where(db.tables.batches.c.id == batch_id).with_for_update())
    tx.conn.execute(be.delete().where(be.c.job_id == job))
    outcome: list[object] = []

    def enqueue() -> None:  # ...while a job of the batch enqueues into it, in a transaction of its own
        conn = db.engine.connect()
        try:
            db.dialect.begin_write(conn)
            batches.enqueue_into(db.join(conn), batch_id, NewJobs.of([new_job(db)]))
            conn.commit()
            outcome.append("joined")
        except Exception as exc:  # noqa: BLE001 - what it raised is the assertion
            outcome.append(exc)
        finally:
            conn.close()

    thread = threading.Thread(target=enqueue)
    thread.start()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not _waiting_for_a_lock(db) and db.dialect.name != "sqlite":
        time.sleep(0.01)
    # ...then finishes it. On MariaDB the enqueue's UPDATE … WHERE id = ? AND finished_at IS
    # NULL took the finished_at index entry before the row, and this UPDATE deadlocked with it.
    assert batch_completion.finish_ready(tx, [batch_id]) == 1
    flush.commit()
    flush.close()
    thread.join(30)
    assert not thread.is_alive() and len(outcome) == 1
    assert isinstance(outcome[0], BatchAlreadyFinished), outcome
