"""An idle worker looks for work with a read that takes no lock, not with claim transactions."""

from __future__ import annotations

import time
from typing import Any

import pytest

import quebec
from conftest import eventually


def test_an_idle_worker_claims_nothing_until_something_is_ready(
    make_qc: Any, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A NOTIFY channel of its own: other tests' enqueues on this server must not wake it.
    qc = make_qc(name=f"idle{prefix}")

    @qc.register_job
    class Nop(quebec.BaseClass):
        def perform(self) -> None:
            pass

    qc.start(spawn=["worker"])
    worker = qc._runtime.workers[0]
    eventually(lambda: worker._idle)  # its first claim found nothing
    writes: list[str] = []
    real = qc.db.transact

    def counting(fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        writes.append(getattr(fn, "__name__", repr(fn)))
        return real(fn, *args, **kwargs)

    monkeypatch.setattr(qc.db, "transact", counting)
    time.sleep(0.5)  # ten polling intervals of nothing to do
    assert "claim" not in writes
    job = Nop.perform_later()
    eventually(lambda: qc.get_job(job.id).state == "finished")
    assert "claim" in writes
