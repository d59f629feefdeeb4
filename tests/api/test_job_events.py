"""qc.subscribe(): in-process job events, and a subscriber that raises breaks nothing."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import quebec
from quebec.events import JobEventKind
from quebec.retry import RetryStrategy


def test_every_kind_of_event_reaches_its_subscribers_in_order(qc: Any) -> None:
    seen: list[tuple[str, str]] = []
    failures: list[quebec.JobEvent] = []
    qc.subscribe(lambda e: seen.append((e.kind.value, e.class_name.rsplit(".", 1)[-1])))
    qc.subscribe(failures.append, "failed")

    @qc.register_job
    class Ok(quebec.BaseClass):
        def perform(self) -> None:
            pass

    @qc.register_job
    class Bad(quebec.BaseClass):
        retry_on = [RetryStrategy((ConnectionError,), wait=3600, attempts=2)]
        discard_on = [KeyError]

        def perform(self, how: str) -> None:
            raise {"retry": ConnectionError, "discard": KeyError, "fail": ValueError}[how](how)

    Ok.perform_later()
    for how in ("retry", "discard", "fail"):
        Bad.perform_later(how)
    for _ in range(4):
        qc.drain_one().perform()
    assert seen == [
        ("enqueued", "Ok"),
        ("enqueued", "Bad"),
        ("enqueued", "Bad"),
        ("enqueued", "Bad"),
        ("started", "Ok"),
        ("finished", "Ok"),
        ("started", "Bad"),
        ("retried", "Bad"),  # its next attempt is a row the store writes, not an enqueue
        ("started", "Bad"),
        ("discarded", "Bad"),
        ("started", "Bad"),
        ("failed", "Bad"),
    ]
    [failure] = failures
    assert failure.kind is JobEventKind.FAILED and failure.error.exception_class == "ValueError"


def test_a_subscriber_that_raises_is_logged_and_the_job_still_finishes(
    qc: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: quebec.JobEvent) -> None:
        raise RuntimeError("subscriber bug")

    unsubscribe = qc.subscribe(broken, JobEventKind.FINISHED)

    @qc.register_job
    class Ok(quebec.BaseClass):
        def perform(self) -> int:
            return 1

    job = Ok.perform_later()
    with caplog.at_level(logging.ERROR, logger="quebec.events"):
        qc.drain_one().perform()
    assert job.wait(timeout=5) == 1
    assert any("event.subscriber_failed" in r.getMessage() and "broken" in r.getMessage() for r in caplog.records)
    unsubscribe()
    caplog.clear()
    Ok.perform_later()
    qc.drain_one().perform()
    assert not caplog.records
    with pytest.raises(ValueError, match="kinds must be among"):
        qc.subscribe(print, "exploded")
