"""Function jobs: `@qc.job(queue="mail", retry_on=[...])` makes a plain function (sync or
`async def`) a job, with `.perform_later(...)`, `.set(...)` and `.build(...)`.

Behind it is an ordinary job class, made once when the function is decorated: named by the
function's `__qualname__` (what the jobs row stores), with the options as its class
attributes and a perform that calls the function. So a function job shares every option,
check and code path with class jobs — retries, timeouts, results, drain_one, discovery by
`python -m quebec` — and calling the function directly still just calls it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from quebec.errors import ConfigError
from quebec.job import ActiveJob, BaseClass, JobBuilder

# job() keyword → class attribute. Keys (concurrency_key, rate_limit_key, unique_key) are
# functions of the job's arguments, as the class methods are without `self`.
OPTIONS = {
    "queue": "queue_as",
    "priority": "priority",
    "retry_on": "retry_on",
    "discard_on": "discard_on",
    "rescue_from": "rescue_from",
    "timeout": "timeout",
    "at_most_once": "at_most_once",
    "store_result": "store_result",
    "concurrency_limit": "concurrency_limit",
    "concurrency_duration": "concurrency_duration",
    "concurrency_on_conflict": "concurrency_on_conflict",
    "rate_limit_max": "rate_limit_max",
    "rate_limit_duration": "rate_limit_duration",
    "rate_limit_on_throttle": "rate_limit_on_throttle",
    "exclusive": "exclusive",
    "unique_for": "unique_for",
}
KEY_FUNCTIONS = ("concurrency_key", "rate_limit_key", "unique_key")


class FunctionJob:
    """A function made a job. Call it to run it here and now; `.perform_later(...)` to enqueue."""

    def __init__(self, fn: Callable[..., Any], job_class: type[BaseClass]) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.job_class = job_class

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def perform_later(self, *args: Any, **kwargs: Any) -> ActiveJob:
        return self.job_class.perform_later(*args, **kwargs)

    def set(self, **options: Any) -> JobBuilder:
        return self.job_class.set(**options)

    def build(self, *args: Any, **kwargs: Any) -> ActiveJob:
        return self.job_class.build(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<function job {self.job_class.__qualname__} queue={self.job_class.queue_as!r}>"


def job_class_for(fn: Callable[..., Any], options: dict[str, Any]) -> type[BaseClass]:
    """The job class behind a function job; options are checked as the class is defined."""
    if not callable(fn) or isinstance(fn, type):
        raise ConfigError(f"@qc.job decorates a function, got {fn!r}; for a class, subclass quebec.BaseClass")
    if isinstance(fn, FunctionJob):
        raise ConfigError(f"{fn.job_class.__qualname__} is a job already; decorate it with @qc.job once")
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    if not isinstance(name, str):
        raise ConfigError(f"@qc.job needs a named function (def …), got {fn!r}")
    attrs: dict[str, Any] = {"__module__": fn.__module__, "__qualname__": name, "__doc__": fn.__doc__}
    for option, value in options.items():
        if option in OPTIONS:
            attrs[OPTIONS[option]] = value
        elif option in KEY_FUNCTIONS:
            attrs[option] = _key_method(name, option, value)
        else:
            known = ", ".join(sorted([*OPTIONS, *KEY_FUNCTIONS]))
            raise ConfigError(f"@qc.job({option}=…) on {name} is not an option; the options are {known}")
    attrs["perform"] = _perform_calling(fn)
    return type(fn.__name__, (BaseClass,), attrs)


def _perform_calling(fn: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(fn):

        async def perform_async(self: BaseClass, *args: Any, **kwargs: Any) -> Any:
            return await fn(*args, **kwargs)

        return perform_async

    def perform(self: BaseClass, *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return perform


def _key_method(name: str, option: str, key: Any) -> Callable[..., Any]:
    if not callable(key):
        raise ConfigError(f"@qc.job({option}=…) on {name} must be a function of the job's arguments, got {key!r}")

    def method(self: BaseClass, *args: Any, **kwargs: Any) -> Any:
        return key(*args, **kwargs)

    return method
