"""`python -m quebec` as a user runs it: exit codes and one-sentence errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import quebec
from quebec.types import JobState


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("QUEBEC_") and k != "DATABASE_URL"}
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "quebec", *args], capture_output=True, text=True, env=full, cwd=cwd, timeout=60
    )


def assert_one_sentence(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("quebec: error:") and fragment in lines[0], result.stderr


def test_no_arguments_prints_usage_and_exits_1() -> None:
    result = run_cli()
    assert result.returncode == 1 and "usage: python -m quebec" in result.stderr


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
    assert_one_sentence(missing, "needs job ids or --all")
