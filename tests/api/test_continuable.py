"""Continuable jobs: steps skipped once completed, cursors saved, interrupted jobs enqueued again.

Rows are read back as the Rust wheel writes them: an interrupted (or, after progress, failed)
job ends finished and a new row with the same active_job_id carries the progress at the top
level of its envelope, `continuation: {"completed": [...], "current": [name, cursor] | null}`
and `resumptions`.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
from typing import Any

import pytest
from api_support import state
from sqlalchemy import select

import conftest
import quebec
from conftest import eventually
from quebec.arguments import decode_envelope
from quebec.continuable import Continuation
from quebec.types import JobState


def runs_of(qc: Any, active_job_id: str | None) -> list[tuple[int, dict[str, Any], JobState | None]]:
    """Every row of one job, oldest first: (id, envelope, state)."""
    jobs = qc.db.tables.jobs

    def read(tx: Any) -> list[Any]:
        query = select(jobs.c.id, jobs.c.arguments).where(jobs.c.active_job_id == active_job_id).order_by(jobs.c.id)
        return list(tx.conn.execute(query))

    return [(row.id, json.loads(row.arguments), state(qc, row.id)) for row in qc.db.read(read)]


def drain_all(qc: Any) -> int:
    return conftest.drain_all(qc, limit=20)


def test_an_isolated_step_runs_in_an_execution_of_its_own_and_completed_steps_are_skipped(qc: Any) -> None:
    seen: list[tuple[int, str, bool]] = []

    @qc.register_job
    class Import(quebec.BaseClass, quebec.Continuable):
        def perform(self, total: int) -> int:
            with self.step("one") as step:
                seen.append((self.resumptions, "one", step.skip))
            self.step("two", lambda: seen.append((self.resumptions, "two", False)), isolated=True)
            with self.step("three", start=0) as step:
                seen.append((self.resumptions, "three", step.skip))
                for i in range(step.cursor, total):
                    step.advance(from_=i)
                return int(step.cursor)

    job = Import.perform_later(4)
    assert drain_all(qc) == 3
    runs = runs_of(qc, job.active_job_id)
    assert [s for _, _, s in runs] == [JobState.FINISHED] * 3
    assert [r[1].get("continuation") for r in runs] == [
        None,
        {"completed": ["one"], "current": None},
        {"completed": ["one", "two"], "current": None},
    ]
    assert [r[1].get("resumptions") for r in runs] == [None, 1, 2]
    assert [r[1]["arguments"]["arguments"] for r in runs] == [[4]] * 3
    assert seen == [(0, "one", False), (1, "one", True), (1, "two", False), (2, "one", True), (2, "three", False)]
    assert qc.get_job(runs[0][0]).next_job_id == runs[1][0]
    assert job.wait(timeout=10) == 4  # followed from the first row to the last, as a retry is


def test_an_error_after_advancing_resumes_from_the_saved_cursor(qc: Any, caplog: pytest.LogCaptureFixture) -> None:
    cursors: list[tuple[int, int, bool]] = []

    @qc.register_job
    class Flaky(quebec.BaseClass, quebec.Continuable):
        def perform(self) -> None:
            with self.step("prepare"):
                pass
            with self.step("loop", start=0) as step:
                cursors.append((self.resumptions, step.cursor, step.resumed))
                step.advance(from_=step.cursor)
                if step.cursor < 3:
                    raise ValueError(f"flaky at {step.cursor}")

    job = Flaky.perform_later()
    assert drain_all(qc) == 3
    runs = runs_of(qc, job.active_job_id)
    assert cursors == [(0, 0, False), (1, 1, True), (2, 2, True)]
    assert [r[1].get("continuation") for r in runs[1:]] == [
        {"completed": ["prepare"], "current": ["loop", 1]},
        {"completed": ["prepare"], "current": ["loop", 2]},
    ]
    assert runs[-1][2] == JobState.FINISHED
    # as in the wheel, a resumption is not an execution: the failure counters stay as they were
    assert {(r[1]["executions"], json.dumps(r[1]["exception_executions"])) for r in runs} == {(0, "{}")}
    logged = [r.getMessage() for r in caplog.records if "job.resumed_after_error" in r.getMessage()]
    assert len(logged) == 2 and "ValueError: flaky at 1" in logged[0]  # the row keeps no trace of the error


def test_an_error_without_progress_or_with_resuming_off_or_past_max_resumptions_fails_the_job(qc: Any) -> None:
    @qc.register_job
    class NoProgress(quebec.BaseClass, quebec.Continuable):
        def perform(self) -> None:
            with self.step("loop", start=0):
                raise ValueError("no progress")

    @qc.register_job
    class NoResume(quebec.BaseClass, quebec.Continuable):
        resume_errors_after_advancing = False

        def perform(self) -> None:
            with self.step("loop", start=0) as step:
                step.advance()
                raise ValueError("resuming is off")

    @qc.register_job
    class Bounded(quebec.BaseClass, quebec.Continuable):
        max_resumptions = 2

        def perform(self) -> None:
            with self.step("loop", start=0) as step:
                step.advance(from_=step.cursor)
                raise ValueError("again")

    for cls, runs in ((NoProgress, 1), (NoResume, 1), (Bounded, 3)):
        job = cls.perform_later()
        drain_all(qc)
        rows = runs_of(qc, job.active_job_id)
        assert [s for _, _, s in rows] == [JobState.FINISHED] * (runs - 1) + [JobState.FAILED], cls
        assert qc.get_job(rows[-1][0]).error["exception_class"] == "ValueError"
    assert [r[1].get("resumptions") for r in runs_of(qc, job.active_job_id)] == [None, 1, 2]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("duplicate", "Step 'a' has already been encountered"),
        ("nested", "Step 'b' is nested inside step 'a'"),
    ],
)
def test_a_misused_step_fails_the_job_with_invalid_step_error_and_is_not_resumed(
    qc: Any, body: str, message: str
) -> None:
    @qc.register_job
    class Misused(quebec.BaseClass, quebec.Continuable):
        def perform(self) -> None:
            with self.step("a"):
                if body == "nested":
                    with self.step("b"):
                        pass
            if body == "duplicate":
                with self.step("a"):
                    pass

    job = Misused.perform_later()
    assert drain_all(qc) == 1
    error = qc.get_job(job.id).error
    assert state(qc, job.id) == JobState.FAILED
    assert error["exception_class"] == "InvalidStepError" and error["message"].startswith(message)


@pytest.mark.parametrize(
    ("saved", "message"),
    [
        ({"completed": ["x", "y"], "current": None}, "Step 'y' found, expected to see 'x'"),
        ({"completed": [], "current": ["z", 7]}, "Step 'w' found, expected to resume from 'z'"),
    ],
)
def test_steps_out_of_the_saved_order_raise_invalid_step_error(saved: dict[str, Any], message: str) -> None:
    class Reordered(quebec.BaseClass, quebec.Continuable):
        def perform(self) -> None:
            for name in ("y", "x") if saved["completed"] else ("w", "z"):
                with self.step(name):
                    pass

    job = object.__new__(Reordered)
    vars(job)["_continuation"] = Continuation.from_envelope({"continuation": saved, "resumptions": 1})
    with pytest.raises(quebec.InvalidStepError, match=f"^{message}; "):
        job.perform()


def test_step_context_moves_its_cursor_and_refuses_what_cannot_be_resumed() -> None:
    class Direct(quebec.BaseClass, quebec.Continuable):
        pass

    job = Direct()
    assert job.resumptions == 0 and Direct.max_resumptions is None and Direct.resume_errors_after_advancing
    with job.step("a") as step:
        assert (step.cursor, step.advanced, step.resumed, step.skip) == (None, False, False, False)
        step.advance()
        assert (step.cursor, step.advanced) == (1, True)
        step.advance(from_=9)
        assert step.cursor == 10
        step.set("az")
        step.advance()
        assert step.cursor == "a{"
        step.set({"page": [1, 2]})
        with pytest.raises(TypeError, match="only int and non-empty str cursors have a successor"):
            step.advance()
        with pytest.raises(TypeError, match="must be plain JSON"):
            step.set(object())
        step.checkpoint()  # not shutting down: nothing happens
    with pytest.raises(quebec.InvalidStepError, match="has ended"):
        step.advance()
    with pytest.raises(TypeError, match="a step name must be a str"):
        job.step(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be callable"):
        job.step("b", "not a function")  # type: ignore[arg-type]
    assert job.step("b", lambda step: step.set(3), start=1) is None
    with job.step("c", isolated=True) as step:  # perform called directly: nothing to resume it, so it runs
        assert step.cursor is None


def test_a_completed_steps_body_sees_skip_and_cannot_move_its_cursor() -> None:
    class Resumed(quebec.BaseClass, quebec.Continuable):
        pass

    job = object.__new__(Resumed)
    vars(job)["_continuation"] = Continuation.from_envelope(
        {"continuation": {"completed": ["a"], "current": ["b", 5]}, "resumptions": 3}
    )
    called: list[str] = []
    assert job.resumptions == 3
    job.step("a", lambda: called.append("a"))
    with job.step("b", start=0) as step:
        assert (step.cursor, step.resumed, step.skip) == (5, True, False)
    assert called == []
    again = object.__new__(Resumed)
    vars(again)["_continuation"] = Continuation.from_envelope({"continuation": {"completed": ["a"]}})
    with again.step("a") as step:
        assert (step.skip, step.cursor) == (True, None)
        with pytest.raises(quebec.InvalidStepError, match="completed by an earlier execution"):
            step.set(1)


def test_an_async_perform_resumes_too_and_awaits_an_async_step_callback(qc: Any) -> None:
    seen: list[tuple[int, str]] = []

    @qc.register_job
    class AsyncImport(quebec.BaseClass, quebec.Continuable):
        async def perform(self) -> None:
            async with self.step("fetch") as step:
                await asyncio.sleep(0)
                seen.append((self.resumptions, f"fetch skip={step.skip}"))

            async def store() -> None:
                await asyncio.sleep(0)
                seen.append((self.resumptions, "store"))

            await self.step("store", store, isolated=True)

    job = AsyncImport.perform_later()
    assert drain_all(qc) == 2
    assert seen == [(0, "fetch skip=False"), (1, "fetch skip=True"), (1, "store")]
    assert [s for _, _, s in runs_of(qc, job.active_job_id)] == [JobState.FINISHED, JobState.FINISHED]


def test_job_interrupted_from_a_job_that_is_not_continuable_is_an_ordinary_failure(qc: Any) -> None:
    @qc.register_job
    class Plain(quebec.BaseClass):
        def perform(self) -> None:
            raise quebec.JobInterrupted("not a continuable job")

    job = Plain.perform_later()
    assert drain_all(qc) == 1
    assert state(qc, job.id) == JobState.FAILED


LIMIT = {"n": 10**7}


def test_a_graceful_stop_interrupts_at_the_next_checkpoint_and_another_worker_resumes(make_qc: Any) -> None:
    qc = make_qc(shutdown_timeout=30)
    reached = threading.Event()
    seen: list[tuple[int, Any, bool]] = []

    @qc.register_job
    class Long(quebec.BaseClass, quebec.Continuable):
        def perform(self) -> None:
            with self.step("setup"):
                pass
            with self.step("loop", start=0) as step:
                seen.append((self.resumptions, step.cursor, step.resumed))
                for i in range(step.cursor, LIMIT["n"]):
                    step.advance(from_=i)
                    if i == 2:
                        reached.set()
            with self.step("done"):
                pass

    job = Long.perform_later()
    qc.start(spawn=["worker"], threads=1)
    try:
        assert reached.wait(20), "the job never got to its third iteration"
    finally:
        qc.stop(timeout=30)
    runs = runs_of(qc, job.active_job_id)
    assert [s for _, _, s in runs] == [JobState.FINISHED, JobState.READY]
    saved = runs[1][1]["continuation"]
    assert saved["completed"] == ["setup"] and saved["current"][0] == "loop" and saved["current"][1] >= 3
    assert runs[1][1]["resumptions"] == 1
    LIMIT["n"] = saved["current"][1] + 2
    try:
        assert drain_all(qc) == 1
    finally:
        LIMIT["n"] = 10**7
    assert seen == [(0, 0, False), (1, saved["current"][1], True)]
    eventually(lambda: state(qc, runs[1][0]) == JobState.FINISHED)


def test_class_options_and_a_start_that_cannot_be_stored_are_refused_when_given() -> None:
    with pytest.raises(TypeError, match=r"Bad.max_resumptions must be None \(no bound\) or a whole number >= 0"):

        class Bad(quebec.BaseClass, quebec.Continuable):
            max_resumptions = -1

    with pytest.raises(TypeError, match="resume_errors_after_advancing must be True or False"):

        class Worse(quebec.Continuable, quebec.BaseClass):
            resume_errors_after_advancing = "yes"  # type: ignore[assignment]

    class Fine(quebec.BaseClass, quebec.Continuable):
        max_resumptions = 0

    with pytest.raises(TypeError, match="must be plain JSON"):
        Fine().step("a", start=float("nan"))


def test_term_during_drain_due_interrupts_a_continuable_job_which_is_ready_again_with_its_progress(
    make_qc: Any,
) -> None:
    qc = make_qc(shutdown_timeout=30)

    @qc.register_job
    class Signalled(quebec.BaseClass, quebec.Continuable):
        def perform(self) -> None:
            with self.step("loop", start=0) as step:
                for i in range(step.cursor, step.cursor + 5 if self.resumptions else 10**7):
                    if i == 2 and not self.resumptions:
                        os.kill(os.getpid(), signal.SIGTERM)  # as `kill` would, while the job runs
                    step.advance(from_=i)

    job = Signalled.perform_later()
    report = qc.drain_due(threads=1)  # on the main thread: it handles TERM
    assert (report.retried, report.failed, report.released) == (1, 0, 0)
    runs = runs_of(qc, job.active_job_id)
    assert [s for _, _, s in runs] == [JobState.FINISHED, JobState.READY]
    assert runs[1][1]["continuation"]["current"][0] == "loop" and runs[1][1]["continuation"]["current"][1] >= 3
    assert drain_all(qc) == 1  # the flag is down again: a later drain runs the job to its end
    assert state(qc, runs[1][0]) == JobState.FINISHED


# What the wheel wrote for a job its worker interrupted in step "loop" at cursor 10.
WHEEL_INTERRUPTED = (
    '{"arguments":{"arguments":[20],"continuation":{},"job_class":"StepJob","job_id":"172y4uuel67t","priority":0,'
    '"queue_name":"default","resumptions":0},"continuation":{"completed":["init"],"current":["loop",10]},'
    '"enqueued_at":"2026-12-04T18:01:31.029004843","exception_executions":{},"executions":0,"job_class":"StepJob",'
    '"job_id":"172y4uuel67t","locale":"en","priority":0,"provider_job_id":"172y4uuel67t","queue_name":"default",'
    '"resumptions":1,"scheduled_at":null,"timezone":"UTC"}'
)


def test_the_wheels_interrupted_row_resumes_here_and_ours_has_the_wheels_shape(qc: Any) -> None:
    continuation = Continuation.from_envelope(decode_envelope(WHEEL_INTERRUPTED).raw)
    assert (continuation.completed, continuation.resumptions) == (["init"], 1)
    assert continuation.state() == {"completed": ["init"], "current": ["loop", 10]}

    @qc.register_job
    class StepJob(quebec.BaseClass, quebec.Continuable):
        def perform(self, n: int) -> None:
            with self.step("init"):
                pass
            with self.step("loop", start=0) as step:
                step.advance(from_=step.cursor)
            with self.step("fin", isolated=True):
                pass

    job = StepJob.perform_later(20)
    qc.drain_batch(1)[0].perform()
    ours = runs_of(qc, job.active_job_id)[1][1]
    wheel = json.loads(WHEEL_INTERRUPTED)
    assert sorted(ours) == sorted(wheel) and sorted(ours["arguments"]) == sorted(wheel["arguments"])
    assert ours["continuation"] == {"completed": ["init", "loop"], "current": None}
    assert (ours["arguments"]["continuation"], ours["arguments"]["resumptions"]) == ({}, 0)


def test_while_stopping_the_next_step_that_is_not_completed_raises_job_interrupted() -> None:
    class Stopping(quebec.BaseClass, quebec.Continuable):
        pass

    job = object.__new__(Stopping)
    continuation = Continuation.from_envelope({"continuation": {"completed": ["a"]}}, interrupting=lambda: True)
    vars(job)["_continuation"] = continuation
    with job.step("a") as step:  # completed before: skipped, not interrupted
        assert step.skip
    with pytest.raises(quebec.JobInterrupted, match="interrupted before step 'b'"), job.step("b", start=5):
        raise AssertionError("the body of an interrupted step ran")
    assert continuation.state() == {"completed": ["a"], "current": None}


def test_interrupted_before_the_step_it_resumes_the_saved_cursor_stays_saved() -> None:
    class Again(quebec.BaseClass, quebec.Continuable):
        pass

    job = object.__new__(Again)
    saved = {"continuation": {"completed": ["a"], "current": ["b", 7]}, "resumptions": 2}
    continuation = Continuation.from_envelope(saved, interrupting=lambda: True)
    vars(job)["_continuation"] = continuation
    job.step("a", lambda: None)
    with pytest.raises(quebec.JobInterrupted):
        job.step("b", lambda step: None, start=0)
    assert continuation.state() == {"completed": ["a"], "current": ["b", 7]}
