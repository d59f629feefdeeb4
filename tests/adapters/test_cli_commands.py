"""The CLI's commands on every backend, as subprocesses: output, --json parsed back, exit statuses.

Each subprocess costs about half a second, so each test launches a few and calls main()
in this process for the rest of what it checks.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from cli_support import assert_one_sentence, in_process, run_cli

import quebec
from conftest import eventually
from quebec.clock import utcnow
from quebec.types import JobState

# The package a subprocess imports: the same class name as OnceJob below, so the jobs this
# test enqueues run there.
PACKAGE = """
import quebec

class OnceJob(quebec.BaseClass):
    def perform(self, fail=False):
        if fail:
            raise ValueError("failing on purpose")
"""


class OnceJob(quebec.BaseClass):
    def perform(self, fail: bool = False) -> None:
        if fail:
            raise ValueError("failing on purpose")


@pytest.fixture
def cli_env(db_url: str, prefix: str, tmp_path: Path) -> dict[str, str]:
    (tmp_path / "oncepkg").mkdir()
    (tmp_path / "oncepkg" / "__init__.py").write_text(PACKAGE)
    return {"DATABASE_URL": db_url, "QUEBEC_TABLE_NAME_PREFIX": prefix, "QUEBEC_WORKER_THREADS": "3"}


def count(qc: Any, table: str) -> int:
    return int(qc.db.read(lambda tx: len(tx.conn.execute(getattr(tx.tables, table).select()).all())))


def test_once_runs_what_is_due_then_exits_0_or_1_and_max_jobs_leaves_the_rest_ready(
    make_qc: Any, cli_env: dict[str, str], tmp_path: Path
) -> None:
    qc = make_qc()
    qc.register_job(OnceJob)
    first = qc.perform_all_later([OnceJob.build() for _ in range(5)])

    bounded = run_cli("drain", "oncepkg", "--max-jobs", "2", "--json", env=cli_env, cwd=tmp_path)
    assert bounded.returncode == 0, bounded.stderr
    report = json.loads(bounded.stdout)
    assert (report["performed"], report["finished"], report["failed"], report["stopped"]) == (2, 2, 0, "max_jobs")
    states = sorted(qc.get_job(j.id).state for j in first)
    assert states == [JobState.FINISHED] * 2 + [JobState.READY] * 3
    assert count(qc, "claimed_executions") == 0 and count(qc, "processes") == 0  # no claim, no row left

    failing = OnceJob.perform_later(True)
    due = OnceJob.set(wait=0.2).perform_later()
    later = OnceJob.set(wait=3600).perform_later()
    due_at = qc.get_job(due.id).scheduled_at
    eventually(lambda: utcnow() > due_at)  # due now: the run dispatches it itself

    once = run_cli("oncepkg", "--once", env=cli_env, cwd=tmp_path)
    assert once.returncode == 1, once.stderr
    assert once.stdout.startswith("ran 5 job(s) in ") and "4 finished, 1 failed; nothing due is left" in once.stdout
    assert once.stdout.rstrip().endswith(f"failed job ids: {failing.id}")
    assert "failing on purpose" in once.stderr  # the worker's log line
    assert {qc.get_job(j.id).state for j in [*first, due]} == {JobState.FINISHED}
    assert qc.get_job(failing.id).state == JobState.FAILED
    assert qc.get_job(later.id).state == JobState.SCHEDULED  # not due: left for a later run
    assert count(qc, "claimed_executions") == 0 and count(qc, "processes") == 0


def _jobs_in_every_state(qc: Any) -> dict[str, int]:
    qc.register_job(OnceJob)
    failed = OnceJob.perform_later(True)
    qc.drain_one().perform()
    finished = OnceJob.perform_later()
    qc.drain_one().perform()
    claimed = OnceJob.perform_later()
    assert qc.drain_one().id == claimed.id  # held by the drain's process row, not performed
    ready = OnceJob.set(queue="held").perform_later()
    qc.pause_queue("held")
    scheduled = OnceJob.set(wait=3600).perform_later()
    return {
        "failed": failed.id,
        "finished": finished.id,
        "claimed": claimed.id,
        "ready": ready.id,
        "scheduled": scheduled.id,
    }


def test_stats_processes_and_queues_read_what_the_tables_hold(
    make_qc: Any, cli_env: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    qc = make_qc()
    ids = _jobs_in_every_state(qc)

    stats = run_cli("stats", "--json", env=cli_env)
    assert stats.returncode == 0, stats.stderr
    data = json.loads(stats.stdout)
    assert data["states"] == {"scheduled": 1, "ready": 1, "blocked": 0, "claimed": 1, "failed": 1, "finished": 1}
    queues = {q["name"]: q for q in data["queues"]}
    assert set(queues) == {"default", "held"}
    assert (queues["held"]["size"], queues["held"]["paused"], queues["default"]["paused"]) == (1, True, False)
    assert queues["held"]["oldest_ready_age_seconds"] >= 0 and queues["default"]["oldest_ready_at"] is None
    assert data["oldest_ready_age_seconds"] == queues["held"]["oldest_ready_age_seconds"]

    procs = run_cli("processes", "list", "--json", env=cli_env)
    assert procs.returncode == 0, procs.stderr
    [process] = json.loads(procs.stdout)
    assert (process["kind"], process["pid"], process["running"], process["stale"]) == ("Worker", os.getpid(), 1, False)
    assert process["name"].startswith("drain-") and process["heartbeat_age_seconds"] >= 0

    table = run_cli("queues", "list", env={**cli_env, "COLUMNS": "200"})
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == [
        "QUEUE",
        "SCHEDULED",
        "READY",
        "BLOCKED",
        "CLAIMED",
        "FAILED",
        "PAUSED",
        "OLDEST",
        "READY",
    ]
    assert lines[1].split()[:7] == ["default", "1", "0", "0", "1", "1", "no"]
    assert lines[2].split()[:7] == ["held", "0", "1", "0", "0", "0", "yes"]
    assert lines[-1] == "2 queue(s)"

    # The rest in this process: the same main(), without paying for an interpreter each.
    for key, value in cli_env.items():
        monkeypatch.setenv(key, value)
    listed = in_process(capsys, "jobs", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["id"] for r in rows] == sorted(ids.values(), reverse=True)  # newest first
    assert {r["id"]: r["state"] for r in rows} == {v: k for k, v in ids.items()}
    assert {r["id"]: r["status"] for r in rows}[ids["claimed"]] == "running"
    only_failed = json.loads(in_process(capsys, "jobs", "list", "--state", "failed", "--since", "1h", "--json").stdout)
    assert [r["id"] for r in only_failed] == [ids["failed"]]
    assert only_failed[0]["error"]["exception_class"] == "ValueError"
    assert json.loads(in_process(capsys, "jobs", "list", "--since", "2999-01-01", "--json").stdout) == []
    running = json.loads(in_process(capsys, "jobs", "list", "--state", "running", "--json").stdout)
    assert [r["id"] for r in running] == [ids["claimed"]] and running[0]["process_id"] == process["id"]
    shown = json.loads(in_process(capsys, "jobs", "show", str(ids["scheduled"]), "--json").stdout)
    assert (shown["state"], shown["class_name"], shown["arguments"]["job_class"]) == ("scheduled", "OnceJob", "OnceJob")
    text = in_process(capsys, "jobs", "show", str(ids["failed"]))
    assert "error         ValueError: failing on purpose" in text.stdout and "backtrace" in text.stdout
    assert_one_sentence(in_process(capsys, "jobs", "show", "999999"), "job 999999 does not exist")
    assert_one_sentence(in_process(capsys, "jobs", "list", "--state", "lost"), "state 'lost' is not one of", code=2)


def test_retry_discard_cancel_and_pause_act_and_name_what_they_skipped(
    make_qc: Any, cli_env: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    qc = make_qc()
    ids = _jobs_in_every_state(qc)

    retried = run_cli("jobs", "retry", str(ids["failed"]), str(ids["scheduled"]), env=cli_env)
    assert retried.stdout == "retried 1 job(s)\n"
    assert_one_sentence(retried, f"job {ids['scheduled']} is scheduled, not failed, so it was not retried")
    assert qc.get_job(ids["failed"]).state == JobState.READY

    paused = run_cli("queues", "pause", "default", "--json", env=cli_env)
    assert (paused.returncode, json.loads(paused.stdout)) == (0, {"queue": "default", "paused": True, "changed": True})
    assert qc.queue_paused("default")

    for key, value in cli_env.items():
        monkeypatch.setenv(key, value)
    resumed = in_process(capsys, "queues", "resume", "default", "--json")
    assert json.loads(resumed.stdout) == {"queue": "default", "paused": False, "changed": True}
    assert in_process(capsys, "queues", "resume", "default").stdout == "queue 'default' was not paused\n"
    cancelled = in_process(capsys, "jobs", "cancel", str(ids["scheduled"]), str(ids["claimed"]), "--json")
    assert json.loads(cancelled.stdout) == {"cancelled": 1}
    assert_one_sentence(
        cancelled, f"job {ids['claimed']} is claimed, not ready, scheduled or blocked, so it was not cancelled"
    )
    assert qc.get_job(ids["scheduled"]).state == JobState.FINISHED
    cancelled_rows = json.loads(in_process(capsys, "jobs", "list", "--state", "cancelled", "--json").stdout)
    assert [(r["id"], r["status"], r["state"]) for r in cancelled_rows] == [(ids["scheduled"], "cancelled", "finished")]
    assert [
        r["id"] for r in json.loads(in_process(capsys, "jobs", "list", "--state", "finished", "--json").stdout)
    ] == [ids["finished"]]
    qc.drain_one().perform()  # the retried job fails again
    discarded = in_process(capsys, "jobs", "discard", str(ids["failed"]), "--json")
    assert (discarded.returncode, json.loads(discarded.stdout)) == (0, {"discarded": 1})
    assert qc.get_job(ids["failed"]).state == JobState.FINISHED
    assert_one_sentence(in_process(capsys, "queues", "pause", "no spaces"), "queue name 'no spaces' is not valid")


def test_a_first_word_naming_a_group_without_its_subcommand_is_a_package(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/x.db?mode=rwc")
    monkeypatch.chdir(tmp_path)
    helped = in_process(capsys, "jobs", "--help")
    assert helped.returncode == 0 and "retry" in helped.stdout and "cancel" in helped.stdout
    # `jobs` alone is the spec's quickstart package; here there is none to import.
    alone = in_process(capsys, "jobs")
    assert_one_sentence(alone, "cannot import 'jobs'")
    assert "(to use the jobs command, see `python -m quebec jobs --help`)" in alone.stderr
    assert_one_sentence(in_process(capsys, "jobs", "--once"), "cannot import 'jobs'")
    assert_one_sentence(in_process(capsys, "run", "stats"), "cannot import 'stats'")  # a package named like a command
    assert_one_sentence(in_process(capsys, "--once"), "missing argument 'PACKAGE...'", code=2)
    assert_one_sentence(in_process(capsys, "pkg", "--max-jobs", "3"), "--max-jobs applies to a one-shot run", code=2)
    assert_one_sentence(
        in_process(capsys, "drain", "pkg", "--max-seconds", "0"), "max_seconds=0.0 must be a number of seconds", code=2
    )
    listed = in_process(capsys, "--help")
    assert all(name in listed.stdout for name in ("drain", "jobs", "queues", "processes", "stats", "failed"))


def test_a_command_written_against_argv_plugs_in_with_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from quebec.cli import main

    seen: list[list[str]] = []

    def run_recurring(argv: list[str]) -> int:
        seen.append(argv)
        return 3

    monkeypatch.setattr(main, "COMMANDS", [*main.COMMANDS, main.argv_command("recurring", run_recurring, "Tasks.")])
    result = in_process(capsys, "recurring", "list", "--json", "--help")
    assert (result.returncode, seen) == (3, [["list", "--json", "--help"]])
    assert "recurring  Tasks." in in_process(capsys, "--help").stdout


def test_keys_rotate_re_encrypts_with_the_first_key_and_jobs_show_opens_the_result(
    make_qc: Any, cli_env: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptography.fernet import Fernet

    monkeypatch.setenv("DATABASE_URL", cli_env["DATABASE_URL"])
    monkeypatch.setenv("QUEBEC_TABLE_NAME_PREFIX", cli_env["QUEBEC_TABLE_NAME_PREFIX"])
    made = in_process(capsys, "keys", "generate", "--json")
    new = json.loads(made.stdout)["key"]
    Fernet(new.encode())  # a key Fernet takes
    old = Fernet.generate_key().decode()
    qc = make_qc(encryption_key=old)

    @qc.register_job
    class Sealed(quebec.BaseClass):
        encrypt = True

        def perform(self, secret: str) -> str:
            return secret.upper()

    job = Sealed.perform_later("psst")
    qc.drain_one().perform()

    rotated = run_cli("keys", "rotate", "--json", env={**cli_env, "QUEBEC_ENCRYPTION_KEY": f"{new},{old}"})
    assert (rotated.returncode, json.loads(rotated.stdout)) == (0, {"rotated": 2}), rotated.stderr  # arguments, result
    monkeypatch.setenv("QUEBEC_ENCRYPTION_KEY", new)  # the old key dropped
    shown = json.loads(in_process(capsys, "jobs", "show", str(job.id), "--json").stdout)
    assert (shown["status"], shown["result"]) == ("finished", "PSST")
    monkeypatch.delenv("QUEBEC_ENCRYPTION_KEY")
    assert_one_sentence(in_process(capsys, "keys", "rotate"), "rotating keys needs encryption_key set")
