"""Helpers for the integration tests: worker subprocesses, generated job packages, counts.

Every subprocess a test starts goes through `Procs`, whose fixture kills whatever is
still running at teardown, so a failing test never leaves a worker (or a database
server) behind.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from quebec.dialects import for_url


class Procs:
    """Subprocesses of one test, with their output in files under tmp_path."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[tuple[subprocess.Popen[bytes], str, Path]] = []

    def start(self, argv: list[str], env: Mapping[str, str], cwd: Path, name: str) -> subprocess.Popen[bytes]:
        err = self.tmp_path / f"{name}-{len(self.started)}.log"
        with err.open("wb") as e:
            proc = subprocess.Popen(
                argv, env=dict(env), cwd=cwd, stdout=e, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        self.started.append((proc, name, err))
        return proc

    def output(self, proc: subprocess.Popen[bytes]) -> str:
        for p, _, err in self.started:
            if p is proc:
                return err.read_text(encoding="utf-8", errors="replace")
        raise KeyError(proc)

    def describe(self, tail: int = 3000) -> str:
        parts = []
        for p, name, err in self.started:
            out = err.read_text(encoding="utf-8", errors="replace")[-tail:]
            parts.append(f"--- {name} pid {p.pid} rc={p.poll()} output tail:\n{out}")
        return "\n".join(parts)

    def kill_all(self) -> None:
        for proc, _, _ in self.started:
            if proc.poll() is None:
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)


@contextlib.contextmanager
def managed_procs(tmp_path: Path) -> Iterator[Procs]:
    """For a test module's `procs` fixture: kills what is left at teardown."""
    p = Procs(tmp_path)
    try:
        yield p
    finally:
        p.kill_all()


def write_package(tmp_path: Path, name: str, source: str) -> Path:
    pkg = tmp_path / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent(source), encoding="utf-8")
    return pkg


def import_package(tmp_path: Path, name: str, source: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Write a job package (as write_package) and import it here too, as the worker will:
    the test enqueues with its classes. The import is undone after the test."""
    write_package(tmp_path, name, source)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module(name)
    monkeypatch.setitem(sys.modules, name, module)
    return module


def worker_env(db_url: str, prefix: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUEBEC_") or k.startswith("QUEBEC_TEST_")}
    env.pop("DATABASE_URL", None)
    env.update(
        {
            "DATABASE_URL": db_url,
            "QUEBEC_TABLE_NAME_PREFIX": prefix,
            "QUEBEC_WORKER_POLLING_INTERVAL": "0.05",
            "QUEBEC_DISPATCHER_POLLING_INTERVAL": "0.2",
            "PYTHONPATH": str(tmp_path),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def start_worker(
    procs: Procs,
    package: str,
    env: Mapping[str, str],
    cwd: Path,
    name: str = "worker",
) -> subprocess.Popen[bytes]:
    return procs.start([sys.executable, "-m", "quebec", package], env, cwd, name)


def engine_for(db_url: str) -> Engine:
    sa_url, _ = for_url(db_url)
    return create_engine(sa_url)


def scalar(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def count(engine: Engine, sql: str, **params: Any) -> int:
    return int(scalar(engine, sql, **params) or 0)


def until(
    check: Callable[[], Any],
    within: float,
    what: str,
    procs: Procs,
    alive: list[subprocess.Popen[bytes]] | None = None,
    every: float = 0.05,
) -> Any:
    """Wait for `check()` to be truthy within a deadline; fail at once when a process in
    `alive` exits meanwhile, with the output of every subprocess."""
    deadline = time.monotonic() + within
    last: Any = None
    while True:
        try:
            last = check()
        except Exception as exc:  # noqa: BLE001 - a database mid-restart answers with errors
            last = exc
        else:
            if last:
                return last
        for proc in alive or []:
            if proc.poll() is not None:
                pytest.fail(
                    f"pid {proc.pid} exited (rc={proc.returncode}) while waiting for {what}\n{procs.describe()}"
                )
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {within}s waiting for {what} (last: {last!r})\n{procs.describe()}")
        time.sleep(every)


def stop_gracefully(proc: subprocess.Popen[bytes], procs: Procs, within: float = 30.0) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(within)
    except subprocess.TimeoutExpired:
        pytest.fail(f"pid {proc.pid} did not exit within {within}s of SIGTERM\n{procs.describe()}")
