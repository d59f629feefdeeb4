"""Enqueue refuses what it cannot store or route, and then inserts nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import quebec
from quebec.store import queries


def job_count(qc: quebec.Quebec) -> int:
    return sum(qc.db.read(queries.state_counts).values())


def test_perform_later_of_an_unregistered_class_without_qc_raises_a_type_error_naming_it(qc: quebec.Quebec) -> None:
    class NeverRegisteredJob(quebec.BaseClass):
        def perform(self) -> None:
            pass

    with pytest.raises(TypeError, match="NeverRegisteredJob"):
        NeverRegisteredJob.perform_later(1)
    with pytest.raises(TypeError, match="NeverRegisteredJob"):
        NeverRegisteredJob.set(queue="x").perform_later()
    job = NeverRegisteredJob.perform_later(qc, 1)  # an explicit instance needs no registration
    assert qc.get_job(job.id).class_name.endswith("NeverRegisteredJob")  # type: ignore[arg-type, union-attr]


def test_unserialisable_argument_raises_serialization_error_and_inserts_nothing(qc: quebec.Quebec) -> None:
    @qc.register_job
    class Picky(quebec.BaseClass):
        def perform(self, value: object) -> None:
            pass

    with pytest.raises(quebec.SerializationError, match=r"args\[0\].*object"):
        Picky.perform_later(object())
    with pytest.raises(quebec.SerializationError, match=r"kwargs\['tags'\]"):
        Picky.perform_later(1, tags={1, 2})
    with pytest.raises(quebec.SerializationError):
        Picky.set(wait_until=datetime.now(UTC)).perform_later(float("nan"))
    with pytest.raises(quebec.SerializationError):
        qc.perform_all_later([Picky.build(1), Picky.build(2), Picky.build(b"bytes")])
    assert job_count(qc) == 0


def test_invalid_queue_name_is_refused_at_enqueue(qc: quebec.Quebec) -> None:
    @qc.register_job
    class Routed(quebec.BaseClass):
        def perform(self) -> None:
            pass

    with pytest.raises(quebec.ConfigError, match="queue name"):
        Routed.set(queue="has space").perform_later()
    with pytest.raises(quebec.EnqueueError):
        Routed.set(wait=-1).perform_later()
    assert job_count(qc) == 0
