"""`python -m quebec batches list|show|sweep|clear` on every backend: output, --json, exit statuses."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from cli_support import assert_one_sentence, in_process, run_cli
from sqlalchemy import update

import quebec
from conftest import drain_all
from quebec.store import batches


class Part(quebec.BaseClass):
    def perform(self, fail: bool = False) -> None:
        if fail:
            raise ValueError("part failed")


class Done(quebec.BaseClass):
    def perform(self) -> None:
        pass


@pytest.fixture
def env(db_url: str, prefix: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {"DATABASE_URL": db_url, "QUEBEC_TABLE_NAME_PREFIX": prefix}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def test_list_and_show_batches(make_qc: Any, env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    qc = make_qc()
    qc.register_job(Part)
    qc.register_job(Done)
    with qc.batch(description="failing import", on_finish=Done, owner="ada") as failing:
        members = [Part.perform_later(qc).id, Part.perform_later(qc, True).id]
    drain_all(qc)
    with qc.batch(description="open") as running:
        Part.perform_later(qc)

    listed = run_cli("batches", "list", env=env)  # once as a user runs it
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == [
        "ID",
        "STATUS",
        "DONE",
        "FAILED",
        "TOTAL",
        "PROGRESS",
        "CREATED",
        "FINISHED",
        "DESCRIPTION",
    ]
    assert lines[1].split()[:6] == [str(running.id), "enqueued", "0", "0", "1", "0.0%"]
    assert lines[2].split()[:6] == [str(failing.id), "failed", "1", "1", "2", "100.0%"]
    assert lines[-1] == "2 batch(es)"

    rows = json.loads(in_process(capsys, "batches", "list", "--json").stdout)
    assert [r["id"] for r in rows] == [running.id, failing.id]
    assert rows[1]["metadata"] == {"owner": "ada"} and rows[1]["progress_percentage"] == 100.0
    only = json.loads(in_process(capsys, "batches", "list", "--status", "failed", "--json").stdout)
    assert [r["id"] for r in only] == [failing.id]
    assert len(json.loads(in_process(capsys, "batches", "list", "--limit", "1", "--json").stdout)) == 1

    shown = json.loads(in_process(capsys, "batches", "show", str(failing.id), "--json").stdout)
    assert shown["status"] == "failed" and sorted(j["id"] for j in shown["jobs"]) == sorted(members)
    assert {j["id"]: j["status"] for j in shown["jobs"]}[members[1]] == "failed"
    only_failed = json.loads(
        in_process(capsys, "batches", "show", str(failing.id), "--jobs", "failed", "--json").stdout
    )
    assert [j["id"] for j in only_failed["jobs"]] == [members[1]]
    [callback] = shown["callbacks"]
    assert callback["role"] == "on_finish" and callback["class_name"].endswith("Done")
    assert qc.get_job(callback["job_id"]).class_name == callback["class_name"]
    text = in_process(capsys, "batches", "show", str(failing.id)).stdout
    assert "failing import" in text and f"job {callback['job_id']}" in text and "2 job(s)" in text

    assert_one_sentence(in_process(capsys, "batches", "show", "999999"), "batch 999999 does not exist")
    assert_one_sentence(in_process(capsys, "batches", "show", "x"), "'x' is not a valid integer", code=2)
    assert_one_sentence(in_process(capsys, "batches", "list", "--status", "lost"), "'lost' is not one of", code=2)


def test_sweep_and_clear(make_qc: Any, env: dict[str, str], engine: Any, capsys: pytest.CaptureFixture[str]) -> None:
    qc = make_qc()
    qc.register_job(Part)
    stalled = qc.db.transact(batches.create, batches.NewBatch(active_job_batch_id=str(uuid.uuid4())))
    t = qc.db.tables.batches
    with engine.begin() as conn:
        conn.execute(update(t).where(t.c.id == stalled).values(created_at=qc.db.clock.now() - timedelta(minutes=10)))
    with qc.batch() as failing:
        Part.perform_later(qc, True)
    drain_all(qc)

    swept = json.loads(in_process(capsys, "batches", "sweep", "--json").stdout)
    assert swept == {"stale_executions": 0, "finished_batches": 1, "started_batches": 1}
    assert qc.find_batch(stalled).status == "completed"
    assert in_process(capsys, "batches", "sweep").stdout.strip() == (
        "0 stale executions, 0 finished batches, 0 started batches"
    )

    # Not old enough yet: nothing cleared. Then the succeeded one goes; the failed one is kept.
    assert json.loads(in_process(capsys, "batches", "clear", "--finished-before", "1h", "--json").stdout) == {
        "cleared": 0
    }
    future = (qc.db.clock.now() + timedelta(minutes=1)).isoformat()
    assert in_process(capsys, "batches", "clear", "--finished-before", future).stdout.strip() == "cleared 1 batch(es)"
    assert qc.find_batch(stalled) is None and qc.find_batch(failing.id) is not None
    assert_one_sentence(
        in_process(capsys, "batches", "clear", "--finished-before", "soon"), "'soon' is not a time", code=2
    )
    assert_one_sentence(in_process(capsys, "batches", "sweep", "--stalled-for", "0"), "--stalled-for", code=2)
