"""Backends for every test: SQLite always; PostgreSQL and MySQL/MariaDB when their URL is set.

CI sets QUEBEC_TEST_POSTGRES_URL, QUEBEC_TEST_MYSQL_URL and QUEBEC_TEST_REQUIRE_ALL=1,
which turns a missing server into a failure instead of a skip. Each test gets its own
random table prefix, dropped afterwards, so tests never see each other's rows.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from quebec.dialects import for_url

BACKENDS = ("sqlite", "postgresql", "mysql")
_ENV = {"postgresql": "QUEBEC_TEST_POSTGRES_URL", "mysql": "QUEBEC_TEST_MYSQL_URL"}


def backend_url(name: str, tmp_path: Path) -> str:
    if name == "sqlite":
        return f"sqlite:///{tmp_path}/quebec.db?mode=rwc"
    url = os.environ.get(_ENV[name])
    if not url:
        if os.environ.get("QUEBEC_TEST_REQUIRE_ALL") == "1":
            pytest.fail(f"{_ENV[name]} is not set but QUEBEC_TEST_REQUIRE_ALL=1")
        pytest.skip(f"{_ENV[name]} not set")
    return url


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def prefix() -> str:
    return f"t_{secrets.token_hex(4)}"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A plain SQLAlchemy engine on the test database, for reading rows with SQL."""
    sa_url, _ = for_url(db_url)
    eng = create_engine(sa_url)
    yield eng
    eng.dispose()


@pytest.fixture
def db_url(backend: str, tmp_path: Path, prefix: str) -> Iterator[str]:
    url = backend_url(backend, tmp_path)
    yield url
    drop_prefix(url, prefix)


def drop_prefix(url: str, prefix: str) -> None:
    """Drop every table of a test prefix (children first)."""
    from quebec.dialects import for_url
    from quebec.schema import build_tables

    sa_url, _ = for_url(url)
    engine = create_engine(sa_url)
    try:
        tables = build_tables(prefix)
        with engine.begin() as conn:
            for table in reversed(tables.metadata.sorted_tables):
                conn.execute(text(f"DROP TABLE IF EXISTS {table.name}"))
    except Exception:  # noqa: BLE001 - a failed cleanup must not hide the test's result
        pass
    finally:
        engine.dispose()


FAST = {
    "worker_polling_interval": 0.05,
    "dispatcher_polling_interval": 0.1,
    "shutdown_timeout": 3,
}


@pytest.fixture
def make_qc(db_url: str, prefix: str) -> Iterator[Callable[..., Any]]:
    import quebec

    made: list[Any] = []

    def make(**options: Any) -> Any:
        qc = quebec.Quebec(db_url, table_name_prefix=prefix, **{**FAST, **options})
        qc.create_tables()
        made.append(qc)
        return qc

    yield make
    for qc in made:
        qc.close()


@pytest.fixture
def qc(make_qc: Callable[..., Any]) -> Any:
    return make_qc()


def drain_all(qc: Any, limit: int = 50) -> int:
    """Perform ready (and due) jobs in this thread, one at a time, until none is left; how
    many ran. Fails past `limit`, so a job that keeps enqueuing more cannot loop forever."""
    for count in range(limit):
        executions = qc.drain_batch(1)
        if not executions:
            return count
        executions[0].perform()
    raise AssertionError(f"still jobs to run after {limit} executions")


def eventually(check: Callable[[], Any], within: float = 10.0, every: float = 0.02) -> Any:
    """Wait for `check()` to return something truthy; fail with its last value after `within` s."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"condition not met within {within}s (last value: {last!r})")


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Any]:
    """Subprocesses a test starts (workers, supervisors): their output kept for failure
    messages, every one still running killed at the end (integration_support.Procs)."""
    from integration.integration_support import managed_procs

    with managed_procs(tmp_path) as p:
        yield p
