"""Run a job's perform with its per-job callbacks and its timeout.

before_perform raising fails the job like perform raising would (the log names the
callback); around_perform is a generator that yields once, with perform running at
the yield (not yielding skips perform); after_perform runs after a successful
perform, and an error there is logged by name without failing a job that succeeded.
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
            before()
        except Exception:
            log.warning("hook.failed hook=%s.before_perform job_id=%s", name, instance.id)
            raise
    around = getattr(instance, "around_perform", None)
    if callable(around):
        _around(instance, around, lambda: _with_timeout(name, lambda: instance.perform(*args, **kwargs), timeout))
    else:
        _with_timeout(name, lambda: instance.perform(*args, **kwargs), timeout)
    after = getattr(instance, "after_perform", None)
    if callable(after):
        try:
            after()
        except Exception:
            log.exception("hook.failed hook=%s.after_perform job_id=%s", name, instance.id)


def _around(instance: Any, around: Callable[[], Any], perform: Callable[[], Any]) -> None:
    name = type(instance).__qualname__
    gen = around()
    if not inspect.isgenerator(gen):
        raise ConfigError(
            f"{name}.around_perform must be a generator function that yields once "
            f"(code before `yield` runs before perform, code after it runs after)"
        )
    try:
        next(gen)
    except StopIteration:
        log.info("job.skipped job_id=%s: %s.around_perform did not yield", instance.id, name)
        return
    try:
        perform()
    except Exception as exc:
        try:
            gen.throw(exc)
        except StopIteration:
            return  # the callback handled the error
        raise
    try:
        next(gen)
    except StopIteration:
        return
    gen.close()
    log.warning("hook.misused hook=%s.around_perform: it yielded more than once", name)


def _with_timeout(name: str, fn: Callable[[], Any], seconds: float | None) -> Any:
    """Run fn; after `seconds`, raise JobTimeoutError inside it.

    Python cannot kill a thread: the error is raised at the next bytecode the job's
    thread runs, so a job blocked in one long C call (a socket read without its own
    timeout) is interrupted only when that call returns.
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
        return fn()
    except JobTimeoutError:
        if state["fired"]:
            raise JobTimeoutError(f"{name} ran longer than its timeout of {seconds:g}s") from None
        raise
    finally:
        with lock:
            state["done"] = True
            timer.cancel()
            if state["fired"]:
                # fired just as fn returned: drop the pending exception before it lands elsewhere
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), None)
