"""Batches (Solid Queue's, the wheel's `qc.batch`): joining, counting, finishing once, callbacks.

Jobs run through `qc.drain_one().perform()`, the worker's executor and completer path, so
each outcome and its batch bookkeeping are written as a worker writes them.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

import quebec
from conftest import drain_all
from quebec.store import batch_completion

RAN: list[tuple[str, Any]] = []


class Member(quebec.BaseClass):
    retry_on = [quebec.RetryStrategy((KeyError,), wait=timedelta(0), attempts=2)]
    discard_on = [quebec.DiscardStrategy((IndexError,))]

    def perform(self, how: str = "ok") -> None:
        RAN.append(("member", (how, self.batch_id, self.batch.id if self.batch else None)))
        if how == "fail":
            raise ValueError("boom")
        if how == "retry":
            raise KeyError("again")
        if how == "discard":
            raise IndexError("dropped")
        if how == "more":
            with self.batch.enqueue():
                Member.perform_later("ok")


class Callback(quebec.BaseClass):
    def perform(self, role: str, **kwargs: Any) -> None:
        batch = self.batch
        RAN.append((role, (batch.id, batch.status, batch.metadata, kwargs, quebec.current_batch_id.get())))


@pytest.fixture(autouse=True)
def _fresh() -> None:
    RAN.clear()


def _qc(make_qc: Any) -> Any:
    qc = make_qc()
    qc.register_job(Member)
    qc.register_job(Callback)
    return qc


def _callbacks(qc: Any) -> list[str]:
    return [role for role, _ in RAN if role != "member"]


def _rows(qc: Any, table: str) -> list[Any]:
    t = getattr(qc.db.tables, table)
    rows: list[Any] = qc.db.read(lambda tx: list(tx.conn.execute(select(t).order_by(t.c.id))))
    return rows


def test_jobs_inside_the_block_join_the_batch_and_leaving_it_starts_it(make_qc: Any) -> None:
    qc = _qc(make_qc)
    with qc.batch(description="import", on_finish=Callback.build("finish"), owner="ada") as batch:
        assert quebec.current_batch_id.get() == batch.id
        first = Member.perform_later(qc)
        Member.perform_later(qc)
        assert first.batch_id == batch.id
    assert quebec.current_batch_id.get() is None
    assert Member.perform_later(qc).batch_id is None  # outside the block: no batch
    assert (batch.status, batch.enqueued, batch.total_jobs, batch.pending_jobs) == ("enqueued", True, 2, 2)
    assert batch.metadata == {"owner": "ada"} and batch.description == "import"
    [row] = _rows(qc, "batches")
    assert row.total_jobs == 2 and row.enqueued_at is not None and row.finished_at is None
    assert len(row.active_job_batch_id) == 36
    jobs = _rows(qc, "jobs")
    assert [j.batch_id for j in jobs] == [batch.id, batch.id, None]
    assert json.loads(jobs[0].arguments)["batch_id"] == batch.id
    assert "batch_id" not in json.loads(jobs[2].arguments)
    assert [e.job_id for e in _rows(qc, "batch_executions")] == [jobs[0].id, jobs[1].id]


def test_the_last_job_finishes_the_batch_and_enqueues_its_callbacks_once(make_qc: Any) -> None:
    qc = _qc(make_qc)
    with qc.batch(
        on_finish=Callback.build("finish"),
        on_success=Callback.set(queue="default").build("success", extra=1),
        on_failure=Callback.build("failure"),
        metadata={"k": [1, 2]},
    ) as batch:
        Member.perform_later(qc)
        Member.perform_later(qc, "discard")
    drain_all(qc)
    batch.reload()
    assert (batch.status, batch.finished, batch.succeeded, batch.failed) == ("completed", True, True, False)
    assert (batch.completed_jobs, batch.failed_jobs, batch.pending_jobs, batch.progress_percentage) == (2, 0, 0, 100.0)
    assert _callbacks(qc) == ["success", "finish"]
    success = dict(RAN)["success"]
    assert success == (batch.id, "completed", {"k": [1, 2]}, {"extra": 1}, None)
    [row] = _rows(qc, "batches")
    assert (row.completed_jobs, row.failed_jobs, row.failed_at) == (2, 0, None)
    assert _rows(qc, "batch_executions") == []
    callback_rows = [j for j in _rows(qc, "jobs") if j.class_name == "Callback"]
    assert [json.loads(j.arguments)["callback_batch_id"] for j in callback_rows] == [batch.id, batch.id]
    assert all(j.batch_id is None for j in callback_rows)
    # Finishing again decides nothing: the guarded UPDATE has no row left to take.
    assert qc.db.transact(batch_completion.finish_ready, [batch.id]) == 0
    assert len([j for j in _rows(qc, "jobs") if j.class_name == "Callback"]) == 2


def test_a_failed_job_fails_the_batch_and_a_retried_one_counts_once(make_qc: Any) -> None:
    qc = _qc(make_qc)
    with qc.batch(
        on_finish=Callback.build("finish"), on_success=Callback.build("success"), on_failure=Callback.build("failure")
    ) as batch:
        Member.perform_later(qc, "fail")
        Member.perform_later(qc, "retry")
        Member.perform_later(qc)
    drain_all(qc)
    batch.reload()
    assert batch.status == "failed" and batch.failed and not batch.succeeded
    assert (batch.total_jobs, batch.completed_jobs, batch.failed_jobs) == (3, 1, 2)
    assert batch.failed_at == batch.finished_at
    assert _callbacks(qc) == ["failure", "finish"]
    # the retry: two rows of the job, both in the batch, the batch tracked only one at a time
    retried = [j for j in _rows(qc, "jobs") if j.class_name == "Member" and "retry" in j.arguments]
    assert len(retried) == 2 and {j.batch_id for j in retried} == {batch.id}


def test_counters_are_live_while_the_batch_runs(make_qc: Any) -> None:
    qc = _qc(make_qc)
    with qc.batch() as batch:
        Member.perform_later(qc, "fail")
        Member.perform_later(qc)
        Member.perform_later(qc)
    qc.drain_one().perform()
    qc.drain_one().perform()
    batch.reload()
    assert (batch.status, batch.pending_jobs, batch.failed_jobs, batch.completed_jobs) == ("enqueued", 1, 1, 1)
    assert batch.progress_percentage == 66.67  # rounded to 2 places, as the wheel
    [row] = _rows(qc, "batches")
    assert (row.completed_jobs, row.failed_jobs) == (0, 0)  # as the wheel: written when it finishes


def test_an_empty_batch_finishes_when_the_block_is_left(make_qc: Any) -> None:
    qc = _qc(make_qc)
    with qc.batch(on_finish=Callback.build("finish"), on_success=Callback.build("success")) as batch:
        assert batch.status == "pending"
    assert (batch.status, batch.total_jobs, batch.progress_percentage) == ("completed", 0, 0.0)
    drain_all(qc)
    assert _callbacks(qc) == ["success", "finish"]


def test_enqueue_after_finished_raises_and_writes_nothing(make_qc: Any) -> None:
    qc = _qc(make_qc)
    with qc.batch() as batch:
        Member.perform_later(qc)
    drain_all(qc)
    jobs_before = len(_rows(qc, "jobs"))
    with pytest.raises(quebec.BatchAlreadyFinished, match="already finished"), batch.enqueue():
        pass
    # a stale Batch (it does not know yet) entered anyway: perform_later itself refuses
    stale = quebec.Batch(qc, batch._record, 1, 0)
    object.__setattr__(stale, "_record", batch._record.__class__(**{**_fields(batch._record), "finished_at": None}))
    with stale, pytest.raises(quebec.BatchAlreadyFinished):
        Member.perform_later(qc)
    assert len(_rows(qc, "jobs")) == jobs_before


def _fields(record: Any) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__dataclass_fields__}


def test_a_job_adds_jobs_to_its_own_batch(make_qc: Any) -> None:
    qc = _qc(make_qc)
    with qc.batch(on_finish=Callback.build("finish")) as batch:
        Member.perform_later(qc, "more")
    drain_all(qc)
    batch.reload()
    assert (batch.total_jobs, batch.completed_jobs, batch.status) == (2, 2, "completed")
    assert _callbacks(qc) == ["finish"]
    assert [r[1][0] for r in RAN if r[0] == "member"] == ["more", "ok"]


def test_find_batch_and_by_active_job_batch_id(make_qc: Any) -> None:
    qc = _qc(make_qc)
    with qc.batch(description="x") as batch:
        Member.perform_later(qc)
    assert qc.find_batch(batch.id).description == "x"
    assert qc.find_batch_by_active_job_batch_id(batch.active_job_batch_id).id == batch.id
    assert qc.find_batch(batch.id + 1000) is None
    assert qc.find_batch_by_active_job_batch_id("nope") is None
    assert repr(qc.find_batch(batch.id)) == f"<Batch id={batch.id} status='enqueued' total_jobs=1>"
    with pytest.raises(TypeError, match="batch id"):
        qc.find_batch("1")


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"on_finish": "Callback"}, "on_finish=.*job class"),
        ({"on_success": int}, "on_success=.*job class"),
        ({"metadata": {"when": object()}}, "not JSON"),
        ({"metadata": [1]}, "dict of JSON values"),
        ({"description": 5}, "description"),
        ({"at": float("nan")}, "not JSON"),
    ],
)
def test_bad_input_is_refused_in_one_sentence(make_qc: Any, kwargs: dict[str, Any], words: str) -> None:
    qc = _qc(make_qc)
    with pytest.raises(quebec.EnqueueError, match=words):
        qc.batch(**kwargs)
    assert _rows(qc, "batches") == []


def test_sweep_finishes_batches_whose_jobs_ended_elsewhere_and_starts_stalled_ones(make_qc: Any) -> None:
    qc = _qc(make_qc)
    with qc.batch(on_finish=Callback.build("finish")) as ended:
        Member.perform_later(qc)
    # a writer that does not know batches finished the job: its tracking row stayed
    jobs = qc.db.tables.jobs
    qc.db.transact(lambda tx: tx.conn.execute(update(jobs).values(finished_at=tx.now)))
    qc.db.transact(lambda tx: tx.conn.execute(qc.db.tables.ready_executions.delete()))
    stalled = qc.batch()
    assert stalled.id  # persisted, never entered: pending
    assert qc.sweep_stalled_batches(stalled_for=3600) == {
        "stale_executions": 1,
        "finished_batches": 1,
        "started_batches": 0,
    }
    assert ended.reload().status == "completed" and stalled.reload().status == "pending"
    time.sleep(0.01)
    assert qc.sweep_stalled_batches(stalled_for=0.001)["started_batches"] == 1
    assert stalled.reload().status == "completed"
    assert qc.sweep_stalled_batches() == {"stale_executions": 0, "finished_batches": 0, "started_batches": 0}
    drain_all(qc)
    assert _callbacks(qc) == ["finish"]


def test_clear_finished_batches_deletes_succeeded_ones_in_batches(make_qc: Any) -> None:
    qc = _qc(make_qc)
    for _ in range(5):
        with qc.batch():
            pass
    with qc.batch() as failed:
        Member.perform_later(qc, "fail")
    drain_all(qc)
    assert failed.reload().failed
    assert qc.clear_finished_batches() == 0  # finished just now: younger than clear_finished_jobs_after
    assert qc.clear_finished_batches(batch_size=2, finished_before=time.time() + 60) == 5
    assert [b.id for b in _rows(qc, "batches")] == [failed.id]
    with pytest.raises(quebec.ConfigError, match="batch_size"):
        qc.clear_finished_batches(batch_size=0)
    with pytest.raises(quebec.ConfigError, match="POSIX timestamp"):
        qc.clear_finished_batches(finished_before="yesterday")  # type: ignore[arg-type]


def test_a_flush_without_batch_jobs_touches_no_batch_table(make_qc: Any) -> None:
    """The completer pays nothing for batches unless a job in the flush has one."""
    qc = _qc(make_qc)
    statements: list[str] = []
    from sqlalchemy import event

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(qc.db.engine, "before_cursor_execute", seen)
    try:
        Member.perform_later(qc)
        qc.drain_one().perform()
    finally:
        event.remove(qc.db.engine, "before_cursor_execute", seen)
    tables = (qc.db.tables.batches.name, qc.db.tables.batch_executions.name)
    assert statements and not [s for s in statements if any(t in s for t in tables)]
    count = qc.db.read(lambda tx: tx.conn.scalar(select(func.count()).select_from(qc.db.tables.batches)))
    assert count == 0


def _stale_batch(qc: Any) -> Any:
    """A started batch whose one job another writer finished (its tracking row stayed)."""
    with qc.batch(on_finish=Callback.build("finish")) as batch:
        Member.perform_later(qc)
    jobs = qc.db.tables.jobs
    qc.db.transact(lambda tx: tx.conn.execute(update(jobs).values(finished_at=tx.now)))
    qc.db.transact(lambda tx: tx.conn.execute(qc.db.tables.ready_executions.delete()))
    return batch


def test_the_dispatcher_sweeps_stalled_batches_unless_told_not_to(make_qc: Any) -> None:
    import threading

    from conftest import eventually

    def sweeping() -> bool:
        return any(t.name == "quebec-batch-maintenance" for t in threading.enumerate())

    off = _qc(lambda: make_qc(dispatcher_batch_maintenance=False))
    off.start(spawn=["dispatcher"])
    try:
        assert not sweeping()
    finally:
        off.stop()
    qc = _qc(make_qc)
    batch = _stale_batch(qc)
    qc.start(spawn=["dispatcher"])
    try:
        assert sweeping()
        eventually(lambda: batch.reload().finished)
    finally:
        qc.stop()
    assert batch.status == "completed"


def test_a_worker_runs_a_batch_to_its_callbacks(make_qc: Any) -> None:
    from conftest import eventually

    qc = _qc(make_qc)
    with qc.batch(on_finish=Callback.build("finish"), on_failure=Callback.build("failure")) as batch:
        for how in ("ok", "fail", "retry", "discard", "more"):
            Member.perform_later(qc, how)
    qc.start(spawn=["worker", "dispatcher"], threads=3)
    try:
        eventually(lambda: len(_callbacks(qc)) == 2, within=30)
    finally:
        qc.stop()
    batch.reload()
    assert (batch.status, batch.total_jobs, batch.completed_jobs, batch.failed_jobs) == ("failed", 6, 4, 2)
    assert sorted(_callbacks(qc)) == ["failure", "finish"]


def test_an_exception_escaping_the_block_rolls_its_enqueues_back(make_qc: Any) -> None:
    qc = _qc(make_qc)
    with pytest.raises(RuntimeError, match="abandon"), qc.batch(on_finish=Callback.build("finish")):
        Member.perform_later(qc)
        Member.perform_later(qc)
        raise RuntimeError("abandon")
    assert (_rows(qc, "jobs"), _rows(qc, "batches"), _rows(qc, "batch_executions")) == ([], [], [])
    assert quebec.current_batch_id.get() is None
    Member.perform_later(qc)  # the next enqueue is its own transaction again
    assert len(_rows(qc, "jobs")) == 1


def test_jobs_become_visible_when_the_outermost_block_is_left(make_qc: Any) -> None:
    qc = _qc(make_qc)
    with qc.batch(description="outer") as outer:
        Member.perform_later(qc)
        with qc.batch(description="inner", on_finish=Callback.build("finish")) as inner:
            Member.perform_later(qc)
            assert quebec.current_batch_id.get() == inner.id
        assert quebec.current_batch_id.get() == outer.id
        with outer.enqueue():
            Member.perform_later(qc)
        assert _rows(qc, "jobs") == []  # nothing committed yet: no other connection sees these jobs
        assert qc.find_batch(inner.id).total_jobs == 1  # the block's own transaction does
    assert (outer.status, outer.total_jobs, inner.status, inner.total_jobs) == ("enqueued", 2, "enqueued", 1)
    drain_all(qc)
    assert outer.reload().status == "completed" and inner.reload().status == "completed"
    assert _callbacks(qc) == ["finish"]


class Unique(quebec.BaseClass):
    unique_for = True

    def perform(self, n: int) -> None:
        RAN.append(("member", ("unique", n, None)))


def test_a_duplicate_of_a_unique_job_does_not_join_the_batch(make_qc: Any) -> None:
    qc = _qc(make_qc)
    qc.register_job(Unique)
    held = Unique.perform_later(qc, 1)
    with qc.batch() as batch:
        assert Unique.perform_later(qc, 1).id == held.id  # the job it duplicates stays outside the batch
        Unique.perform_later(qc, 2)
    assert (batch.total_jobs, batch.pending_jobs) == (1, 1)
    assert [j.batch_id for j in _rows(qc, "jobs")] == [None, batch.id]
    drain_all(qc)
    assert batch.reload().status == "completed" and batch.completed_jobs == 1


def test_batches_finish_when_finished_jobs_are_not_kept(make_qc: Any) -> None:
    qc = _qc(lambda: make_qc(preserve_finished_jobs=False))
    with qc.batch(on_finish=Callback.build("finish")) as batch:
        Member.perform_later(qc)
        Member.perform_later(qc, "retry")
        Member.perform_later(qc, "fail")
    drain_all(qc)
    batch.reload()
    assert (batch.status, batch.total_jobs, batch.completed_jobs, batch.failed_jobs) == ("failed", 3, 1, 2)
    assert _callbacks(qc) == ["finish"]


def test_the_sweep_skips_a_database_without_batch_tables(make_qc: Any, caplog: pytest.LogCaptureFixture) -> None:
    from quebec.engine.batch_maintenance import BatchMaintenance

    qc = _qc(make_qc)
    qc.db.tables.batch_executions.drop(qc.db.engine)
    qc.db.tables.batches.drop(qc.db.engine)
    sweep = BatchMaintenance(qc.db, interval=60.0)
    with caplog.at_level("INFO", logger="quebec.dispatcher"):
        assert sweep.run_once() == 60.0
        assert sweep.run_once() == 60.0
    assert [r.message for r in caplog.records].count(
        "batch.sweep_skipped: the batch tables do not exist; qc.create_tables() adds them"
    ) == 1
    Member.perform_later(qc)  # jobs outside batches do not need the tables
    qc.drain_one().perform()


def test_a_bulk_enqueue_joins_the_batch_whole(make_qc: Any) -> None:
    qc = _qc(make_qc)
    with qc.batch() as batch:
        jobs = qc.perform_all_later([Member.build() for _ in range(70)])  # PostgreSQL: the COPY path
    assert {j.batch_id for j in jobs} == {batch.id}
    assert (batch.total_jobs, batch.pending_jobs, len(_rows(qc, "batch_executions"))) == (70, 70, 70)
    assert {json.loads(j.arguments)["batch_id"] for j in _rows(qc, "jobs")} == {batch.id}
    for execution in qc.drain_batch(100):
        execution.perform()
    assert batch.reload().status == "completed" and batch.completed_jobs == 70


def test_a_function_job_can_be_a_callback(make_qc: Any) -> None:
    qc = _qc(make_qc)
    seen: list[int] = []

    @qc.job
    def report(n: int = 0) -> None:
        seen.append(n)

    with qc.batch(on_finish=report.build(7), on_success=report):
        pass
    drain_all(qc)
    assert seen == [0, 7]


class Stepped(quebec.BaseClass, quebec.Continuable):
    def perform(self) -> None:
        self.step("first", lambda: RAN.append(("member", ("first", self.batch_id, None))))
        self.step("second", lambda: RAN.append(("member", ("second", self.batch_id, None))), isolated=True)


def test_a_continuable_job_resumed_in_a_new_execution_counts_once(make_qc: Any) -> None:
    qc = _qc(make_qc)
    qc.register_job(Stepped)
    with qc.batch(on_finish=Callback.build("finish")) as batch:
        Stepped.perform_later(qc)
    assert drain_all(qc) == 3  # the job, its resumption (a new row in the batch), the callback
    assert [r[1][:2] for r in RAN if r[0] == "member"] == [("first", batch.id), ("second", batch.id)]
    batch.reload()
    assert (batch.status, batch.total_jobs, batch.completed_jobs) == ("completed", 1, 1)
    assert _callbacks(qc) == ["finish"]
