"""`python -m quebec recurring list [--json]`: every task with its next and last run."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

import quebec
from quebec.clock import FrozenClock


class Digest(quebec.BaseClass):
    def perform(self, *args: Any) -> None:
        pass


def in_process(capsys: pytest.CaptureFixture[str], *args: str) -> subprocess.CompletedProcess[str]:
    from quebec.cli.main import main

    code = main(list(args))
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, out, err)


def test_recurring_list_shows_tasks_with_next_runs_as_text_and_json(
    make_qc: Callable[..., Any],
    db_url: str,
    prefix: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    qc = make_qc()
    qc.register_job(Digest)
    qc.schedule("digest", Digest, "every day at noon Europe/Berlin", args=[1], queue="mail")
    qc.db.clock = FrozenClock(datetime(2026, 12, 2, 15, 40))
    assert qc.run_recurring_now("digest") is True
    qc.next_run_function("later")(lambda previous: None)  # registered here, unknown to the CLI
    qc.schedule("custom", Digest, "next_run later from 2026-12-02T16:00:00Z")
    monkeypatch.setenv("QUEBEC_DATABASE_URL", db_url)
    monkeypatch.setenv("QUEBEC_TABLE_NAME_PREFIX", prefix)
    listed = in_process(capsys, "recurring", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["key"]: row for row in json.loads(listed.stdout)}
    assert rows["digest"]["schedule"] == "every day at noon Europe/Berlin"
    assert (rows["digest"]["arguments"], rows["digest"]["queue_name"], rows["digest"]["static"]) == ([1], "mail", False)
    assert rows["digest"]["next_run_at"].endswith("11:00:00+00:00")  # noon in Berlin, in UTC
    assert rows["digest"]["last_run_at"] == "2026-12-02T15:40:00+00:00"
    assert rows["custom"]["next_run_at"] is None and "not registered in this process" in rows["custom"]["problem"]
    monkeypatch.setenv("COLUMNS", "200")  # wide enough that no cell is cut, whatever runs the tests
    table = in_process(capsys, "recurring", "list")
    assert table.returncode == 0
    assert "digest" in table.stdout and "every day at noon Europe/Berlin" in table.stdout
    bad = in_process(capsys, "recurring", "show")
    # a group's name followed by no subcommand of it names packages (the CLI's rule): one sentence
    assert bad.returncode == 1 and "python -m quebec recurring --help" in bad.stderr, bad.stderr
    assert bad.stderr.count("\n") == 1


def test_recurring_list_with_no_tasks_says_so(
    make_qc: Callable[..., Any],
    db_url: str,
    prefix: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make_qc()
    monkeypatch.setenv("QUEBEC_DATABASE_URL", db_url)
    monkeypatch.setenv("QUEBEC_TABLE_NAME_PREFIX", prefix)
    assert in_process(capsys, "recurring", "list").stdout == "no recurring tasks\n"
