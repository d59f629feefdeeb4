"""@qc.job: a function is a job, sharing options and code paths with class jobs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import quebec
from integration.integration_support import Procs, import_package, start_worker, worker_env
from quebec.retry import RetryStrategy
from quebec.types import JobStatus


def test_a_decorated_function_is_enqueued_run_and_still_callable(qc: Any) -> None:
    calls: list[tuple[Any, ...]] = []

    @qc.job
    def add(a: int, b: int = 0) -> int:
        calls.append((a, b))
        return a + b

    assert isinstance(add, quebec.FunctionJob) and add.__name__ == "add"
    assert add(2, b=3) == 5  # a plain call runs it here and now
    job = add.perform_later(4, b=5)
    row = qc.get_job(job.id)
    assert (row.class_name, row.queue_name) == (add.job_class.__qualname__, "default")
    qc.drain_one().perform()
    assert job.wait(timeout=5) == 9
    assert calls == [(2, 3), (4, 5)]


def test_options_become_the_job_class_options(qc: Any) -> None:
    runs: list[int] = []

    @qc.job(queue="mail", priority=5, retry_on=[RetryStrategy((ConnectionError,), wait=0, attempts=2)], timeout=30)
    def flaky(n: int) -> None:
        runs.append(n)
        raise ConnectionError("down")

    job = flaky.set(priority=1).perform_later(7)
    assert (qc.get_job(job.id).queue_name, qc.get_job(job.id).priority) == ("mail", 1)
    assert flaky.build(1).queue_name is None and flaky.job_class.priority == 5
    qc.drain_one().perform()
    qc.drain_one().perform()  # the retry, due at once
    with pytest.raises(quebec.JobFailed, match="ConnectionError"):
        job.wait(timeout=5)
    assert runs == [7, 7]


def test_an_async_function_job_is_awaited(qc: Any) -> None:
    @qc.job(queue="io")
    async def fetch(x: int) -> int:
        await asyncio.sleep(0.01)
        return x * 2

    job = fetch.perform_later(21)
    qc.drain_one().perform()
    assert job.wait(timeout=5) == 42 and qc.get_job(job.id).status is JobStatus.FINISHED


def test_bad_options_and_targets_are_one_sentence(qc: Any) -> None:
    with pytest.raises(quebec.ConfigError, match=r"@qc.job\(queues=…\) on .* is not an option; the options are"):

        @qc.job(queues="x")
        def one() -> None:
            pass

    with pytest.raises(quebec.ConfigError, match="decorates a function"):
        qc.job(int)
    with pytest.raises(quebec.ConfigError, match="priority"):

        @qc.job(priority="high")
        def two() -> None:
            pass

    @qc.job
    def three() -> None:
        pass

    with pytest.raises(quebec.ConfigError, match="a job already"):
        qc.job(three)


JOB_PACKAGE = """
import os

import quebec

qc = quebec.Quebec(os.environ["DATABASE_URL"], table_name_prefix=os.environ["QUEBEC_TABLE_NAME_PREFIX"])


@qc.job(queue="default")
def triple(n):
    return 3 * n
"""


@pytest.mark.slow
def test_python_m_quebec_discovers_and_runs_function_jobs(
    db_url: str,
    prefix: str,
    make_qc: Callable[..., Any],
    procs: Procs,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    package = f"function_jobs_{prefix}"
    env = worker_env(db_url, prefix, tmp_path)
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("QUEBEC_TABLE_NAME_PREFIX", prefix)
    module = import_package(tmp_path, package, JOB_PACKAGE, monkeypatch)
    make_qc()  # the tables
    jobs = [module.triple.perform_later(n) for n in (1, 2, 3)]
    start_worker(procs, package, env, tmp_path)
    assert module.qc.wait_for_jobs(jobs, timeout=30) == [3, 6, 9]
    module.qc.close()
