"""ready.claim (ready → claimed): ordering, limit, queue selectors and pauses."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from store_support import (
    claim,
    claimed_ids,
    count_rows,
    db_fixture,  # noqa: F401 - a fixture
    enqueue,
    new_job,
    register,
    state_of,
    tables_fixture,  # noqa: F401 - a fixture
)

from quebec.store import Database, Tx, pauses, ready
from quebec.types import JobState, QueueSelector


@pytest.fixture
def pid(db: Database) -> int:
    return register(db)


def by_queue(db: Database, *queues: str) -> dict[str, int]:
    """One ready job per queue name; returns queue → job id."""
    ids = enqueue(db, *(new_job(db, queue=q) for q in queues))
    return dict(zip(queues, ids, strict=True))


def test_claim_takes_lowest_priority_number_first(db: Database, pid: int) -> None:
    ids = enqueue(db, *(new_job(db, priority=p) for p in (5, -2, 3, 0, 10)))
    prio = dict(zip(ids, (5, -2, 3, 0, 10), strict=True))
    taken = [claimed_ids(db, pid, limit=1)[0] for _ in range(5)]
    assert [prio[j] for j in taken] == [-2, 0, 3, 5, 10]


def test_claim_breaks_priority_ties_by_job_id(db: Database, pid: int) -> None:
    ids = enqueue(db, *(new_job(db, priority=p) for p in (1, 0, 1, 0, 1)))
    taken = [claimed_ids(db, pid, limit=1)[0] for _ in range(5)]
    assert taken == [ids[1], ids[3], ids[0], ids[2], ids[4]]


def test_claim_returns_jobs_ordered_by_priority_then_id(db: Database, pid: int) -> None:
    ids = enqueue(db, *(new_job(db, priority=p) for p in (2, 1, 2, 1)))
    jobs = claim(db, pid, limit=10)
    assert [j.id for j in jobs] == [ids[1], ids[3], ids[0], ids[2]]
    assert [j.priority for j in jobs] == [1, 1, 2, 2]


def test_claim_takes_at_most_limit_and_leaves_the_rest_ready(db: Database, pid: int) -> None:
    ids = enqueue(db, *(new_job(db) for _ in range(7)))
    taken = claimed_ids(db, pid, limit=3)
    assert taken == ids[:3]
    assert [state_of(db, j) for j in ids] == [JobState.CLAIMED] * 3 + [JobState.READY] * 4
    assert count_rows(db, "ready_executions") == 4


def test_claim_with_zero_limit_takes_nothing(db: Database, pid: int) -> None:
    enqueue(db, new_job(db))
    assert claim(db, pid, limit=0) == []
    assert count_rows(db, "ready_executions") == 1


def test_claim_of_an_empty_queue_returns_nothing(db: Database, pid: int) -> None:
    assert claim(db, pid) == []


def test_claim_records_the_claiming_process_and_returns_the_job(db: Database, pid: int) -> None:
    job = new_job(db, queue="mail", priority=4, class_name="Mailer")
    (job_id,) = enqueue(db, job)
    (claimed,) = claim(db, pid)
    assert (claimed.id, claimed.queue_name, claimed.class_name, claimed.priority) == (job_id, "mail", "Mailer", 4)
    assert (claimed.arguments, claimed.active_job_id, claimed.scheduled_at) == (
        job.arguments,
        job.active_job_id,
        job.scheduled_at,
    )
    c = db.tables.claimed_executions
    rows = db.read(lambda tx: tx.conn.execute(select(c.c.job_id, c.c.process_id)).all())
    assert [tuple(r) for r in rows] == [(job_id, pid)]
    assert count_rows(db, "ready_executions") == 0


def test_claim_never_hands_out_a_job_twice(db: Database, pid: int) -> None:
    ids = enqueue(db, *(new_job(db) for _ in range(3)))
    other = register(db)
    assert claimed_ids(db, pid, limit=2) == ids[:2]
    assert claimed_ids(db, other, limit=5) == ids[2:]
    assert claim(db, pid) == []


def test_claim_drains_exact_queues_in_selector_order(db: Database, pid: int) -> None:
    low = enqueue(db, *(new_job(db, queue="low", priority=-10) for _ in range(2)))
    high = enqueue(db, *(new_job(db, queue="high", priority=10) for _ in range(2)))
    other = enqueue(db, new_job(db, queue="other", priority=-100))
    assert sorted(claimed_ids(db, pid, limit=3, queues=("high", "low"))) == sorted(high + low[:1])
    assert claimed_ids(db, pid, limit=3, queues=("high", "low")) == low[1:]
    assert state_of(db, other[0]) == JobState.READY


def test_claim_prefix_wildcard_matches_names_starting_with_the_prefix(db: Database, pid: int) -> None:
    ids = by_queue(db, "mail", "mailers", "mail.urgent", "mXail", "amail", "mai", "default")
    taken = set(claimed_ids(db, pid, queues=("mail*",)))
    assert taken == {ids["mail"], ids["mailers"], ids["mail.urgent"]}


def test_claim_prefix_wildcard_treats_underscore_as_a_literal(db: Database, pid: int) -> None:
    ids = by_queue(db, "a_b", "a_", "axb", "ab")
    assert set(claimed_ids(db, pid, queues=("a_*",))) == {ids["a_b"], ids["a_"]}


def test_claim_prefix_wildcard_treats_percent_and_escape_characters_as_literals(db: Database, pid: int) -> None:
    # The store binds what it is given; queue-name validation happens above it. A LIKE
    # built by hand would let '%' match anything and '/' or '\\' escape the next character.
    ids = by_queue(db, "50%off", "50xoff", "50", "a/b", "ab", "a\\b", "a\\x")
    assert set(claimed_ids(db, pid, queues=("50%*",))) == {ids["50%off"]}
    assert set(claimed_ids(db, pid, queues=("a/*",))) == {ids["a/b"]}
    assert set(claimed_ids(db, pid, queues=("a\\b*",))) == {ids["a\\b"]}


def test_claim_star_takes_every_queue(db: Database, pid: int) -> None:
    ids = by_queue(db, "a", "b", "c.d", "mail")
    assert set(claimed_ids(db, pid, queues=("*",))) == set(ids.values())


def test_claim_star_among_other_patterns_still_takes_every_queue(db: Database, pid: int) -> None:
    ids = by_queue(db, "a", "zzz")
    assert set(claimed_ids(db, pid, queues=("a", "*"))) == set(ids.values())


def test_claim_mixes_exact_names_and_wildcards(db: Database, pid: int) -> None:
    ids = by_queue(db, "critical", "critical2", "mail", "mailers", "default")
    taken = set(claimed_ids(db, pid, queues=("critical", "mail*")))
    assert taken == {ids["critical"], ids["mail"], ids["mailers"]}


def test_claim_with_overlapping_patterns_takes_each_job_once(db: Database, pid: int) -> None:
    ids = enqueue(db, *(new_job(db, queue="mailers") for _ in range(3)))
    jobs = claim(db, pid, limit=10, queues=("mailers", "mail*", "*"))
    assert [j.id for j in jobs] == ids


def test_claim_skips_paused_queues(db: Database, pid: int) -> None:
    ids = by_queue(db, "paused", "running")
    assert db.transact(pauses.pause, queue_name="paused") is True
    assert set(claimed_ids(db, pid)) == {ids["running"]}
    assert claimed_ids(db, pid, queues=("paused",)) == []
    assert claimed_ids(db, pid, queues=("pause*",)) == []
    assert state_of(db, ids["paused"]) == JobState.READY
    assert db.transact(pauses.resume, queue_name="paused") is True
    assert claimed_ids(db, pid) == [ids["paused"]]


def test_pause_and_resume_report_whether_they_changed_anything(db: Database) -> None:
    assert db.transact(pauses.pause, queue_name="q") is True
    assert db.transact(pauses.pause, queue_name="q") is False
    assert db.read(pauses.paused_queues) == ["q"]
    assert db.transact(pauses.resume, queue_name="q") is True
    assert db.transact(pauses.resume, queue_name="q") is False
    assert db.read(pauses.paused_queues) == []


def test_pausing_twice_inside_one_transaction_keeps_the_transaction_usable(db: Database) -> None:
    def pause_twice(tx: Tx) -> tuple[bool, bool, list[str]]:
        first = pauses.pause(tx, queue_name="q")
        second = pauses.pause(tx, queue_name="q")
        return first, second, pauses.paused_queues(tx)

    assert db.transact(pause_twice) == (True, False, ["q"])


@pytest.mark.parametrize("queues", [("*",), ("work*",)])
def test_a_claim_in_flight_leaves_the_rest_to_a_concurrent_claim(
    db: Database, pid: int, queues: tuple[str, ...]
) -> None:
    """A claim locks the rows it takes, not every ready row: on MariaDB the planner sorted
    (and so locked) the whole ready table for a claim of all queues, and a second worker's
    SKIP LOCKED claim found nothing; two workers deadlocked."""
    if db.dialect.single_writer:
        pytest.skip("one writer at a time (SQLite): a second claim waits for the first to commit")
    enqueue(db, *(new_job(db, queue="work", priority=i % 3) for i in range(300)))
    other = register(db)
    with db.engine.connect() as conn:
        db.dialect.begin_write(conn)
        first = ready.claim(db.join(conn), queues=QueueSelector(queues), limit=50, process_id=pid)
        second = claim(db, other, limit=50, queues=queues)  # its own transaction, meanwhile
        conn.rollback()
    assert len(first) == 50
    assert len(second) == 50, "the first claim's locks held back rows it did not take"
    assert not {j.id for j in first} & {j.id for j in second}
