"""The running job, in a ContextVar: `quebec.context.job_context_var.get()` from any code a job calls.

Set by the executor around every perform (worker thread, `Execution.perform()`, and every
coroutine of an `async def` job, which inherit it); outside a job it holds the empty
`JobContext()`. The logging filter reads the same variable, so log records and library
code see one context.

`jid`, `queue` and `target` are the wheel's fields (the job's active_job_id, its queue and the
module that defines its class); `job_id` (the row id) and `job_class` are ours.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass

__all__ = ["JobContext", "job_context_var"]


@dataclass(frozen=True, slots=True)
class JobContext:
    jid: str | None = None
    queue: str | None = None
    target: str | None = None
    job_id: int | str | None = None
    job_class: str | None = None


NO_JOB = JobContext()  # frozen: safe to share as the default
job_context_var: contextvars.ContextVar[JobContext] = contextvars.ContextVar("quebec_job_context", default=NO_JOB)
