"""Concurrency keys in the store: routing to blocked, slots freed with the outcome, maintenance.

The rows are the wheel's (spec/schema.md, lifecycle.md #3, #4, #8, #13, #17-#20): a
semaphore `"Class/key"` whose value counts free slots, blocked rows with the key and an
expires_at of now + concurrency_duration.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select
from store_support import (
    SharedTables,
    claimed_ids,
    clock_of,
    count_rows,
    enqueue,
    new_job,
    register,
    state_of,
    tables_fixture,  # noqa: F401 - fixtures
)

from quebec.store import Database, blocked, claimed, failed, jobs, processes, scheduled, semaphores
from quebec.types import ConcurrencyRule, ErrorInfo, JobState, NewJob

RULES = {
    "LimitedJob": ConcurrencyRule(2, timedelta(seconds=120)),
    "DropJob": ConcurrencyRule(1, timedelta(seconds=30), discard=True),
}


class Rules:
    limited = True

    def concurrency(self, class_name: str) -> ConcurrencyRule:
        return RULES.get(class_name, ConcurrencyRule(1, timedelta(seconds=60)))

    def queue_rule(self, queue_name: str) -> ConcurrencyRule | None:
        return None


@pytest.fixture
def db(backend: str, tables: SharedTables) -> Database:
    database = tables.fresh(backend)
    database.flow = Rules()
    return database


def limited(db: Database, key: str = "LimitedJob/7", *, priority: int = 0, in_seconds: float = 0.0) -> NewJob:
    job = new_job(db, class_name=key.partition("/")[0], priority=priority, in_seconds=in_seconds)
    return replace(job, concurrency_key=key)


def free(db: Database, key: str = "LimitedJob/7") -> int | None:
    return db.read(semaphores.free_slots, keys=[key]).get(key)


def test_jobs_past_the_limit_are_blocked_with_the_wheels_rows(db: Database) -> None:
    states = db.transact(jobs.enqueue_many, [limited(db) for _ in range(4)])
    assert [e.state for e in states] == [JobState.READY, JobState.READY, JobState.BLOCKED, JobState.BLOCKED]
    assert free(db) == 0
    rows = db.read(lambda tx: tx.conn.execute(select(tx.tables.blocked_executions)).all())
    now = clock_of(db).now()
    assert [(r.concurrency_key, r.expires_at, r.queue_name) for r in rows] == [
        ("LimitedJob/7", now + timedelta(seconds=120), "default")
    ] * 2
    sem = db.read(lambda tx: tx.conn.execute(select(tx.tables.semaphores)).one())
    assert (sem.key, sem.value, sem.expires_at) == ("LimitedJob/7", 0, now + timedelta(seconds=120))


def test_other_keys_and_unkeyed_jobs_are_not_held_back(db: Database) -> None:
    enqueue(db, limited(db), limited(db))
    other, plain = enqueue(db, limited(db, "LimitedJob/8"), new_job(db))
    assert (state_of(db, other), state_of(db, plain)) == (JobState.READY, JobState.READY)
    assert free(db, "LimitedJob/8") == 1


def test_finishing_a_holder_moves_the_next_blocked_job_by_priority_then_id(db: Database) -> None:
    a, b, low, high, high2 = enqueue(
        db, limited(db), limited(db), limited(db, priority=5), limited(db, priority=1), limited(db, priority=1)
    )
    pid = register(db)
    assert sorted(claimed_ids(db, pid)) == [a, b]
    db.transact(claimed.finish_many, process_id=pid, job_ids=[a])
    assert [state_of(db, j) for j in (low, high, high2)] == [JobState.BLOCKED, JobState.READY, JobState.BLOCKED]
    assert free(db) == 0
    db.transact(claimed.fail_many, process_id=pid, failures=[claimed.Failure(b, ErrorInfo("E", "m"))])
    assert state_of(db, high2) is JobState.READY
    assert state_of(db, low) is JobState.BLOCKED


def test_retry_and_discard_free_the_slot_in_their_transaction(db: Database) -> None:
    a, b, waiting, last = enqueue(db, limited(db), limited(db), limited(db), limited(db))
    pid = register(db)
    claimed_ids(db, pid)
    next_run = limited(db, in_seconds=30)
    db.transact(claimed.retry_many, process_id=pid, next_runs={a: next_run})
    assert state_of(db, waiting) is JobState.READY
    db.transact(claimed.discard, process_id=pid, job_id=b)
    assert state_of(db, last) is JobState.READY
    assert free(db) == 0


def test_a_due_job_takes_a_slot_at_dispatch_or_waits_blocked(db: Database) -> None:
    a, b = enqueue(db, limited(db), limited(db))
    (later,) = enqueue(db, limited(db, in_seconds=10))
    assert state_of(db, later) is JobState.SCHEDULED
    clock_of(db).advance(10)
    assert db.transact(scheduled.dispatch_due, limit=10) == 1
    assert state_of(db, later) is JobState.BLOCKED


def test_retry_failed_routes_through_the_limit(db: Database) -> None:
    a, b, c = enqueue(db, limited(db), limited(db), limited(db))
    pid = register(db)
    claimed_ids(db, pid)
    db.transact(claimed.fail_many, process_id=pid, failures=[claimed.Failure(a, ErrorInfo("E", "m"))])
    assert state_of(db, c) is JobState.READY  # a's slot went to c
    db.transact(failed.retry_failed, job_ids=[a])
    assert state_of(db, a) is JobState.BLOCKED


def test_released_and_pruned_claims_keep_their_slot(db: Database) -> None:
    a, b, c = enqueue(db, limited(db), limited(db), limited(db))
    pid = register(db)
    claimed_ids(db, pid)
    db.transact(claimed.release_many, process_id=pid, job_ids=[a])
    assert (state_of(db, a), state_of(db, c)) == (JobState.READY, JobState.BLOCKED)
    db.transact(processes.prune_dead, stale_before=clock_of(db).now() + timedelta(seconds=1))
    assert (state_of(db, b), state_of(db, c)) == (JobState.READY, JobState.BLOCKED)
    assert free(db) == 0


def test_discard_on_conflict_finishes_the_job_instead_of_blocking_it(db: Database) -> None:
    kept, dropped = db.transact(jobs.enqueue_many, [limited(db, "DropJob/1"), limited(db, "DropJob/1")])
    assert (kept.state, dropped.state) == (JobState.READY, JobState.FINISHED)
    assert state_of(db, dropped.id) is JobState.FINISHED
    assert count_rows(db, "blocked_executions") == 0


def test_unblock_bypasses_the_limit_and_cancel_blocked_deletes_the_job(db: Database) -> None:
    _, _, first, second, third = enqueue(db, *(limited(db) for _ in range(5)))
    assert db.transact(blocked.unblock, job_ids=[first, 999_999]) == [first]
    assert state_of(db, first) is JobState.READY
    assert db.transact(blocked.cancel_blocked, job_ids=[second]) == [second]
    assert state_of(db, second) is None
    assert db.read(blocked.blocked_ids, class_name="LimitedJob", limit=10) == [third]
    assert db.read(blocked.blocked_ids, class_name="OtherJob", limit=10) == []


def test_a_slot_never_given_back_returns_after_concurrency_duration(db: Database) -> None:
    """The holder vanished without a word (kill -9 and its row deleted): the semaphore
    expires, maintenance deletes it, and the blocked job takes the slot."""
    holder, other, waiting = enqueue(db, limited(db), limited(db), limited(db))
    db.transact(lambda tx: tx.conn.execute(tx.tables.ready_executions.delete()))  # holders gone, slots not given back
    assert db.transact(semaphores.expire, limit=10) == []
    assert db.transact(blocked.unblock_expired, limit=10) == []
    clock_of(db).advance(121)
    assert db.transact(semaphores.expire, limit=10) == ["LimitedJob/7"]
    assert db.transact(blocked.unblock_expired, limit=10) == [waiting]
    assert state_of(db, waiting) is JobState.READY
    assert free(db) == 1


def test_cancelling_a_ready_holder_frees_its_slot(db: Database) -> None:
    a, _, waiting = enqueue(db, limited(db), limited(db), limited(db))
    assert db.transact(jobs.cancel, job_ids=[a]) == [a]
    assert state_of(db, waiting) is JobState.READY


def test_a_slot_freed_after_its_semaphore_expired_away_is_taken_afresh(db: Database) -> None:
    a, _, waiting = enqueue(db, limited(db), limited(db), limited(db))
    pid = register(db)
    claimed_ids(db, pid)
    db.transact(lambda tx: tx.conn.execute(tx.tables.semaphores.delete()))  # maintenance expired it
    db.transact(claimed.finish_many, process_id=pid, job_ids=[a])
    assert state_of(db, waiting) is JobState.READY
    assert free(db) == 1  # a new row: the one job it knows of holds a slot
