"""Running `python -m quebec` as a user does (a subprocess), or its main() in this process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("QUEBEC_") and k != "DATABASE_URL"}
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "quebec", *args], capture_output=True, text=True, env=full, cwd=cwd, timeout=60
    )


def in_process(capsys: pytest.CaptureFixture[str], *args: str) -> subprocess.CompletedProcess[str]:
    """main() called here, for what needs no second process (a subprocess costs half a second)."""
    from quebec.cli.main import main

    code = main(list(args))
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, out, err)


def assert_one_sentence(result: subprocess.CompletedProcess[str], fragment: str, code: int = 1) -> None:
    """One line on stderr; exit status 1 for a user or database error, 2 for a usage error."""
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("quebec: error:") and fragment in lines[0], result.stderr
