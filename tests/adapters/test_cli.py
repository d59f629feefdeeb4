"""`python -m quebec` as a user runs it: exit codes and one-sentence errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_support import assert_one_sentence, in_process, run_cli

import quebec
from quebec.types import JobState


def test_no_arguments_prints_usage_and_exits_2() -> None:
    # A usage error, as an unknown option is: 2 (it was 1 before issue 14 made 2 the usage status).
    result = run_cli()
    assert result.returncode == 2 and "usage: python -m quebec" in result.stderr


def test_missing_database_url_is_one_sentence() -> None:
    assert_one_sentence(run_cli("jobs"), "no database URL; set DATABASE_URL")


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("redis://localhost/0", "scheme 'redis' is not supported"),
        ("postgresql://postgres@127.0.0.1:1/x", "cannot connect to postgresql://postgres@127.0.0.1:1/x"),
        ("sqlite:////no/such/folder/x.db", "folder '/no/such/folder' does not exist"),
        ("postgresql://user:s3cret@127.0.0.1:1/x", "***"),
    ],
)
def test_bad_urls_are_one_sentence_and_hide_passwords(url: str, fragment: str) -> None:
    result = run_cli("jobs", env={"DATABASE_URL": url})
    assert_one_sentence(result, fragment)
    assert "s3cret" not in result.stderr


def test_unknown_package_is_one_sentence(tmp_path: Path) -> None:
    result = run_cli("nosuchpkg", env={"DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}, cwd=tmp_path)
    assert_one_sentence(result, "cannot import 'nosuchpkg'")


def test_package_without_jobs_is_one_sentence(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "__init__.py").write_text("")
    result = run_cli("empty", env={"DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}, cwd=tmp_path)
    assert_one_sentence(result, "no quebec.BaseClass subclasses found in empty")


def test_malformed_queue_yml_is_one_sentence(tmp_path: Path) -> None:
    (tmp_path / "queue.yml").write_text("workers:\n  - threads: zero\n")
    result = run_cli("jobs", env={"DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}, cwd=tmp_path)
    assert_one_sentence(result, "threads")


def test_failed_list_retry_and_discard_through_the_cli(make_qc: Any, db_url: str, prefix: str) -> None:
    qc = make_qc()

    @qc.register_job
    class CliBroken(quebec.BaseClass):
        def perform(self, n: int) -> None:
            raise ValueError(f"broken {n}")

    jobs = qc.perform_all_later([CliBroken.build(i) for i in range(3)])
    from conftest import eventually

    qc.start(spawn=["worker"])
    eventually(lambda: all(qc.get_job(j.id).state == JobState.FAILED for j in jobs))
    qc.stop()
    env = {"DATABASE_URL": db_url, "QUEBEC_TABLE_NAME_PREFIX": prefix}
    listed = run_cli("failed", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert sorted(r["id"] for r in rows) == sorted(j.id for j in jobs)
    assert rows[0]["error"]["exception_class"] == "ValueError"
    retried = run_cli("failed", "retry", str(jobs[0].id), env=env)
    assert retried.returncode == 0 and "retried 1 job(s)" in retried.stdout
    assert qc.get_job(jobs[0].id).state == JobState.READY
    discarded = run_cli("failed", "discard", "--all", "--json", env=env)
    assert json.loads(discarded.stdout) == {"discarded": 2}
    assert {qc.get_job(j.id).state for j in jobs[1:]} == {JobState.FINISHED}
    missing = run_cli("failed", "retry", env=env)
    assert_one_sentence(missing, "needs job ids or --all", code=2)


def test_help_and_version_exit_0_and_an_unknown_option_is_one_sentence(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    helped = in_process(capsys, "--help")
    assert helped.returncode == 0 and helped.stdout.startswith("usage: python -m quebec")
    version = in_process(capsys, "--version")
    assert (version.returncode, version.stdout.strip()) == (0, f"quebec {quebec.__version__}")
    # An option used to be imported as a package ("cannot import '--once'"); --once is an option now.
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/x.db")
    assert_one_sentence(in_process(capsys, "jobs", "--twice"), "unknown option '--twice'", code=2)
    assert_one_sentence(in_process(capsys, "-x"), "unknown option '-x'", code=2)


def test_an_empty_spawn_list_is_refused_rather_than_running_nothing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/x.db")
    monkeypatch.setenv("QUEBEC_SPAWN", " , ")
    result = in_process(capsys, "jobs")
    assert_one_sentence(result, "environment variable QUEBEC_SPAWN names no component, so nothing would run")


def _failed_and_finished(qc: quebec.Quebec) -> tuple[int, int]:
    from conftest import eventually

    @qc.register_job
    class Outcomes(quebec.BaseClass):
        def perform(self, fail: bool) -> None:
            if fail:
                raise ValueError("no")

    failed, finished = Outcomes.perform_later(True), Outcomes.perform_later(False)
    qc.start(spawn=["worker"])
    eventually(lambda: {qc.get_job(failed.id).state, qc.get_job(finished.id).state} == {"failed", "finished"})  # type: ignore[arg-type, union-attr]
    qc.stop()
    assert failed.id is not None and finished.id is not None
    return failed.id, finished.id


def test_failed_retry_names_the_state_of_ids_it_skipped_and_refuses_ids_out_of_range(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/cli.db?mode=rwc"
    qc = quebec.Quebec(url)
    try:
        failed, finished = _failed_and_finished(qc)
        env = {"DATABASE_URL": url}
        result = run_cli("failed", "retry", str(finished), str(failed), "999", env=env)
        assert result.stdout.strip() == "retried 1 job(s)"
        assert_one_sentence(
            result, f"job {finished} is finished, not failed; job 999 does not exist, so they were not retried"
        )
        assert qc.get_job(failed).state == JobState.READY  # type: ignore[union-attr]

        huge = in_process(capsys, "failed", "discard", "99999999999999999999")
        assert_one_sentence(
            huge, "job id 99999999999999999999 is out of range; ids run from 1 to 9223372036854775807", code=2
        )
    finally:
        qc.close()


def test_failed_cli_reads_the_table_prefix_from_queue_yml_as_quebec_does(tmp_path: Path) -> None:
    # It used to build its own Database from QUEBEC_TABLE_NAME_PREFIX alone, on other tables.
    (tmp_path / "queue.yml").write_text("table_name_prefix: from_yml\n")
    url = f"sqlite:///{tmp_path}/cli.db?mode=rwc"
    qc = quebec.Quebec(url, config_path=str(tmp_path / "queue.yml"))
    try:
        assert qc.db.tables.jobs.name == "from_yml_jobs"
        failed, _ = _failed_and_finished(qc)
        listed = run_cli("failed", "list", "--json", env={"DATABASE_URL": url}, cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr
        assert [row["id"] for row in json.loads(listed.stdout)] == [failed]
    finally:
        qc.close()


def test_the_cli_and_the_app_pick_the_same_tables_for_a_prefix_with_trailing_underscores(tmp_path: Path) -> None:
    # 'ab__' meant ab_jobs to the app (normalised twice) and ab__jobs to the CLI (once).
    url = f"sqlite:///{tmp_path}/cli.db?mode=rwc"
    qc = quebec.Quebec(url, table_name_prefix="ab__")
    try:
        assert qc.db.tables.jobs.name == "ab_jobs"  # as the Rust wheel names them
        failed, _ = _failed_and_finished(qc)
        listed = run_cli("failed", "list", "--json", env={"DATABASE_URL": url, "QUEBEC_TABLE_NAME_PREFIX": "ab__"})
        assert listed.returncode == 0, listed.stderr
        assert [row["id"] for row in json.loads(listed.stdout)] == [failed]
    finally:
        qc.close()
