"""Run the coroutines of one job (`async def perform` and async callbacks) to completion.

One event loop per job, made on first use and closed when the job ends: before_perform,
around_perform, perform and after_perform of one job share it (a client opened in
before_perform can be used in perform), and tasks a job leaves behind are cancelled with
it rather than leaking into the next job. Jobs that are all `def` never make a loop.

The loop runs in the calling thread (a worker's lane thread). When that thread already
runs a loop — `Execution.perform()` called from an async test — the job's loop runs in a
thread of its own instead, since a loop cannot be nested; the job's context variables go
with each coroutine either way.

Many async jobs sharing one long-lived loop is a later step; this makes them correct.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
from collections.abc import Awaitable, Coroutine
from types import TracebackType
from typing import Any, TypeVar

from quebec.errors import JobTimeoutError

T = TypeVar("T")


class JobLoop:
    """`with JobLoop() as loop: loop.run(coro, timeout=…)`; closes what it made on exit."""

    def __init__(self) -> None:
        self._runner: asyncio.Runner | None = None
        self._thread: _LoopThread | None = None

    def __enter__(self) -> JobLoop:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def run(self, awaitable: Awaitable[T], *, timeout: float | None = None, label: str = "job") -> T:
        """Await `awaitable` on this job's loop; after `timeout` seconds it is cancelled and
        JobTimeoutError raised (a TimeoutError the job raises itself stays a TimeoutError)."""
        coro = _timed(awaitable, timeout, label)
        if _loop_running_here():
            if self._thread is None:
                self._thread = _LoopThread()
            return self._thread.run(coro)
        if self._runner is None:
            self._runner = asyncio.Runner()
        return self._runner.run(coro, context=contextvars.copy_context())

    def close(self) -> None:
        runner, self._runner = self._runner, None
        thread, self._thread = self._thread, None
        if runner is not None:
            runner.close()
        if thread is not None:
            thread.close()


async def _timed(awaitable: Awaitable[T], seconds: float | None, label: str) -> T:
    if not seconds:
        return await awaitable
    deadline = asyncio.timeout(seconds)
    try:
        async with deadline:
            return await awaitable
    except TimeoutError:
        if deadline.expired():
            raise JobTimeoutError(f"{label} ran longer than its timeout of {seconds:g}s") from None
        raise


def _loop_running_here() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _LoopThread:
    """An event loop in a daemon thread of its own, for a caller whose thread runs a loop."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="quebec-job-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        # run_coroutine_threadsafe schedules with the caller's context copied, so the job's
        # context variables are visible inside.
        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result()

    def close(self) -> None:
        async def shutdown() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._loop.shutdown_asyncgens()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
