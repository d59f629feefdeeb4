"""Run a job's perform with its per-job callbacks and its timeout.

before_perform raising fails the job like perform raising would (the log names the
callback); around_perform is a generator that yields once, with perform running at
the yield (not yielding skips perform); after_perform runs after a successful
perform, and an error there is logged by name without failing a job that succeeded.

"Raising" means any BaseException: sys.exit(), KeyboardInterrupt, CancelledError and
GeneratorExit leave here like any error, for the executor to turn into an outcome.
A callback that returns a coroutine (`async def`) is refused: nothing here awaits it.
"""

from __future__ import annotations

import ctypes
import inspect
import logging
import threading
from collections.abc import Callable
from typing import Any

from quebec.errors import ConfigError, JobTimeoutError

log = logging.getLogger("quebec.worker")


def run_perform(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any], timeout: float | None) -> None:
    name = type(instance).__qualname__
    before = getattr(instance, "before_perform", None)
    if callable(before):
        try:
            _sync(name, "before_perform", before())
        except BaseException:
            log.warning("hook.failed hook=%s.before_perform job_id=%s", name, instance.id)
            raise

    def perform() -> None:
        _with_timeout(name, lambda: _sync(name, "perform", instance.perform(*args, **kwargs)), timeout)

    around = getattr(instance, "around_perform", None)
    if callable(around):
        _around(instance, around, perform)
    else:
        perform()
    after = getattr(instance, "after_perform", None)
    if callable(after):
        try:
            _sync(name, "after_perform", after())
        except BaseException:
            log.exception("hook.failed hook=%s.after_perform job_id=%s", name, instance.id)


def _sync(name: str, method: str, result: Any) -> Any:
    """`result` unless it is a coroutine: Quebec does not run `async def` jobs yet, and a
    coroutine never awaited would look like a job that succeeded without doing anything."""
    if inspect.iscoroutine(result):
        result.close()
        raise NotImplementedError(
            f"{name}.{method} is `async def`, and Quebec does not run coroutines yet (it is coming); "
            f"make it a plain `def` (call asyncio.run(...) inside it if you need to await)"
        )
    return result


def _around(instance: Any, around: Callable[[], Any], perform: Callable[[], None]) -> None:
    name = type(instance).__qualname__
    gen = around()
    if not inspect.isgenerator(gen):
        _sync(name, "around_perform", gen)
        raise ConfigError(
            f"{name}.around_perform must be a generator function that yields once "
            f"(code before `yield` runs before perform, code after it runs after)"
        )
    try:
        try:
            next(gen)
        except StopIteration:
            log.info("job.skipped job_id=%s: %s.around_perform did not yield", instance.id, name)
            return
        try:
            perform()
        except BaseException as exc:
            try:
                gen.throw(exc)
            except StopIteration:
                return  # the callback handled the error
            raise
        try:
            next(gen)
        except StopIteration:
            return
        log.warning("hook.misused hook=%s.around_perform: it yielded more than once", name)
    finally:
        # Never leave it suspended: its `finally` would run whenever it is collected, in
        # whatever thread, raising GeneratorExit at its yield.
        gen.close()


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
