"""The CLI's tables fit the terminal; ages read at a glance."""

from __future__ import annotations

import pytest

from quebec.cli.output import Column, age, table

COLUMNS = [Column("ID", right=True), Column("CLASS", flex=True), Column("ERROR", flex=True)]
ROWS = [(7, "ReportJob", "ValueError: " + "x" * 80), (1234, "A", None)]


def test_a_table_wider_than_the_terminal_cuts_its_widest_flex_column(capsys: pytest.CaptureFixture[str]) -> None:
    table(COLUMNS, ROWS, width=40)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "  ID  CLASS      ERROR",
        "   7  ReportJob  ValueError: xxxxxxxxxx…",
        "1234  A          -",
    ]
    assert max(len(line) for line in lines) == 40


def test_a_table_that_fits_is_not_cut(capsys: pytest.CaptureFixture[str]) -> None:
    table(COLUMNS, ROWS, width=200)
    assert "x" * 80 in capsys.readouterr().out


@pytest.mark.parametrize(
    ("seconds", "text"), [(None, "-"), (-3, "0s"), (59.9, "59s"), (252, "4m12s"), (7500, "2h05m"), (273600, "3d04h")]
)
def test_ages(seconds: float | None, text: str) -> None:
    assert age(seconds) == text
