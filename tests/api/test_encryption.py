"""Encryption at rest: the raw tables hold no plaintext argument or result; keys rotate."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

import quebec
from quebec.types import JobStatus

SECRET = "card-4111-1111-1111-1111"


def _raw(qc: Any) -> str:
    """Everything the job tables hold, as text, read with plain SQL."""
    t = qc.db.tables
    with qc.db.engine.connect() as conn:
        rows = [
            *conn.execute(text(f"SELECT arguments FROM {t.jobs.name}")),
            *conn.execute(text(f"SELECT result FROM {t.job_results.name}")),
            *conn.execute(text(f"SELECT error FROM {t.failed_executions.name}")),
        ]
    return "\n".join(str(r[0]) for r in rows)


def _secret_job(qc: Any) -> type[quebec.BaseClass]:
    @qc.register_job
    class Charge(quebec.BaseClass):
        encrypt = True

        def perform(self, card: str, *, amount: int) -> dict[str, Any]:
            return {"charged": card, "amount": amount}

    return Charge


def test_encrypted_arguments_and_results_are_not_in_the_tables_and_run_as_given(make_qc: Any) -> None:
    qc = make_qc(encryption_key=Fernet.generate_key().decode())
    Charge = _secret_job(qc)

    @qc.register_job
    class Plain(quebec.BaseClass):
        def perform(self, note: str) -> str:
            return note

    job = Charge.perform_later(SECRET, amount=5)
    plain = Plain.perform_later("visible")
    assert SECRET not in _raw(qc) and "_quebec_encrypted" in _raw(qc)
    for execution in qc.drain_batch(2):
        execution.perform()
    assert job.wait(timeout=5) == {"charged": SECRET, "amount": 5}
    assert qc.get_job(job.id).result == {"charged": SECRET, "amount": 5}
    assert plain.wait(timeout=5) == "visible"
    raw = _raw(qc)
    assert SECRET not in raw and "visible" in raw  # only what opted in is sealed


def test_encrypt_all_jobs_and_a_worker_without_the_key_fails_the_job_saying_so(make_qc: Any) -> None:
    key = Fernet.generate_key().decode()
    qc = make_qc(encryption_key=key, encrypt_all_jobs=True)

    @qc.register_job
    class Note(quebec.BaseClass):
        def perform(self, note: str) -> str:
            return note

    job = Note.perform_later(SECRET)
    assert SECRET not in _raw(qc)
    keyless = make_qc()
    keyless.register_job(Note)
    keyless.drain_one().perform()
    row = keyless.get_job(job.id)
    assert row.status is JobStatus.FAILED
    assert row.error["exception_class"] == "EncryptionError"
    assert "encrypted and this process has no encryption_key" in row.error["message"]
    assert SECRET not in _raw(qc)


def test_key_rotation_keeps_every_job_readable(make_qc: Any) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    before = make_qc(encryption_key=old)
    Charge = _secret_job(before)
    done = Charge.perform_later(SECRET, amount=2)
    before.drain_one().perform()
    pending = Charge.perform_later(SECRET, amount=1)  # still ready when the keys change
    rotated = make_qc(encryption_key=f"{new},{old}")
    assert rotated.rotate_encryption_keys() == 3  # two argument lists and one result
    assert rotated.rotate_encryption_keys(batch_size=1) == 3  # run again: rewritten under the first key
    only_new = make_qc(encryption_key=new)
    only_new.register_job(Charge)
    assert only_new.wait_for_job(done, timeout=5) == {"charged": SECRET, "amount": 2}
    only_new.drain_one().perform()
    assert only_new.wait_for_job(pending, timeout=5) == {"charged": SECRET, "amount": 1}
    assert SECRET not in _raw(only_new)
    with pytest.raises(quebec.ConfigError, match="rotating keys needs encryption_key"):
        make_qc().rotate_encryption_keys()


def test_bad_keys_and_missing_keys_are_one_sentence(make_qc: Any) -> None:
    with pytest.raises(quebec.ConfigError, match="encryption_key entry 2 of 2 is not a Fernet key"):
        make_qc(encryption_key=f"{Fernet.generate_key().decode()},not-a-key")
    with pytest.raises(quebec.ConfigError, match="encrypt_all_jobs is on but no encryption_key"):
        make_qc(encrypt_all_jobs=True)
    qc = make_qc()
    Charge = _secret_job(qc)
    with pytest.raises(quebec.ConfigError, match=r"Charge.encrypt is True but no encryption_key is set"):
        Charge.perform_later(SECRET, amount=1)
    assert qc.db.read(lambda tx: tx.conn.execute(tx.tables.jobs.select()).all()) == []
    assert "***" in repr(make_qc(encryption_key=Fernet.generate_key().decode()).settings)
