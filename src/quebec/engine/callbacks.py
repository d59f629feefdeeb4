"""Run a job's perform with its per-job callbacks and its timeout.

before_perform raising fails the job like perform raising would (the log names the
callback); around_perform is a generator that yields once, with perform running at
the yield (not yielding skips perform); after_perform runs after a successful
perform, and an error there is logged by name without failing a job that succeeded.

Each of them may be `async def` (around_perform then an async generator): its coroutine
runs to completion on the job's event loop (engine/coroutines.py), and what it raises
goes the same way as from a plain function. `timeout` applies to perform either way: a
sync perform is interrupted from a timer, a coroutine is cancelled.

"Raising" means any BaseException: sys.exit(), KeyboardInterrupt, CancelledError and
GeneratorExit leave here like any error, for the executor to turn into an outcome.
"""

from __future__ import annotations

import ctypes
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from quebec.engine.coroutines import JobLoop
from quebec.errors import ConfigError, JobTimeoutError

log = logging.getLogger("quebec.worker")


def run_perform(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any], timeout: float | None) -> Any:
    """Run the job; returns what perform returned (awaited), None when around_perform skipped it."""
    with JobLoop() as loop:
        return _run_callbacks(instance, args, kwargs, timeout, loop)


def _run_callbacks(
    instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any], timeout: float | None, loop: JobLoop
) -> Any:
    name = type(instance).__qualname__
    before = getattr(instance, "before_perform", None)
    if callable(before):
        try:
            _settle(loop, before(), f"{name}.before_perform")
        except BaseException:
            log.warning("hook.failed hook=%s.before_perform job_id=%s", name, instance.id)
            raise

    returned: list[Any] = [None]

    def perform() -> None:
        label = f"{name}.perform"
        method = instance.perform
        if inspect.iscoroutinefunction(method):
            returned[0] = loop.run(method(*args, **kwargs), timeout=timeout, label=label)
        else:
            returned[0] = _settle(loop, _with_timeout(label, lambda: method(*args, **kwargs), timeout), label, timeout)

    around = getattr(instance, "around_perform", None)
    if callable(around):
        _around(instance, around, perform, loop)
    else:
        perform()
    after = getattr(instance, "after_perform", None)
    if callable(after):
        try:
            _settle(loop, after(), f"{name}.after_perform")
        except BaseException:
            log.exception("hook.failed hook=%s.after_perform job_id=%s", name, instance.id)
    return returned[0]


def _settle(loop: JobLoop, result: Any, label: str, timeout: float | None = None) -> Any:
    """`result`, awaited first when it is awaitable (a callback that is `async def`, or a
    plain function that returned a coroutine): a coroutine never awaited would look like a
    job that succeeded without doing anything."""
    if inspect.isawaitable(result):
        return loop.run(result, timeout=timeout, label=label)
    return result


def _around(instance: Any, around: Callable[[], Any], perform: Callable[[], None], loop: JobLoop) -> None:
    label = f"{type(instance).__qualname__}.around_perform"
    gen = around()
    if inspect.isasyncgen(agen := gen):
        steps = _Steps(
            advance=lambda: loop.run(_awaited(agen.__anext__()), label=label),
            throw=lambda exc: loop.run(_awaited(agen.athrow(exc)), label=label),
            close=lambda: loop.run(_awaited(agen.aclose()), label=label),
            done=StopAsyncIteration,
        )
    elif inspect.isgenerator(sgen := gen):
        steps = _Steps(advance=lambda: next(sgen), throw=sgen.throw, close=sgen.close, done=StopIteration)
    else:
        _settle(loop, gen, label)
        raise ConfigError(
            f"{label} must be a generator function that yields once "
            f"(code before `yield` runs before perform, code after it runs after); "
            f"`async def` with one `yield` works too"
        )
    _drive_around(instance.id, label, steps, perform)


@dataclass(frozen=True, slots=True)
class _Steps:
    """How to step an around_perform generator, plain or async: the one driver below runs both."""

    advance: Callable[[], Any]
    throw: Callable[[BaseException], Any]
    close: Callable[[], Any]
    done: type[Exception]  # StopIteration or StopAsyncIteration


def _drive_around(job_id: Any, label: str, steps: _Steps, perform: Callable[[], None]) -> None:
    try:
        try:
            steps.advance()
        except steps.done:
            log.info("job.skipped job_id=%s: %s did not yield", job_id, label)
            return
        try:
            perform()
        except BaseException as exc:
            try:
                steps.throw(exc)
            except steps.done:
                return  # the callback handled the error
            raise
        try:
            steps.advance()
        except steps.done:
            return
        log.warning("hook.misused hook=%s: it yielded more than once", label)
    finally:
        # Never leave it suspended: its `finally` would run whenever it is collected, in
        # whatever thread, raising GeneratorExit at its yield.
        steps.close()


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    """A coroutine around an awaitable that is not one (an async generator's step)."""
    return await awaitable


def _with_timeout(name: str, fn: Callable[[], Any], seconds: float | None) -> Any:
    """Run fn; after `seconds`, raise JobTimeoutError inside it.

    Python cannot kill a thread: the error is raised at the next bytecode the job's
    thread runs, so a job blocked in one long C call (a socket read without its own
    timeout) is interrupted only when that call returns.

    The error can land just after fn returned, before the pending one is withdrawn: it
    then leaves from here too (that job is recorded as timed out), never later in the
    worker's own code, which would lose the job's outcome.
    """
    if not seconds:
        return fn()
    thread_id = threading.get_ident()
    lock = threading.Lock()
    state = {"done": False, "fired": False}

    def fire() -> None:
        with lock:
            if state["done"]:
                return
            state["fired"] = True
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(JobTimeoutError))

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    try:
        try:
            return fn()
        finally:
            with lock:
                state["done"] = True
                timer.cancel()
                if state["fired"]:
                    # fired just as fn returned: withdraw the pending exception before it lands elsewhere
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), None)
    except JobTimeoutError:
        if state["fired"]:
            raise JobTimeoutError(f"{name} ran longer than its timeout of {seconds:g}s") from None
        raise
