"""Executor: perform one claimed job and turn what happened into a Completion.

Resolves the class (an unknown one fails the job, the worker goes on), decodes the
arguments, runs perform, and asks outcome.decide() what an exception means. User
handlers (retry exhausted, discard_on, rescue_from) run here, never inside a
transaction. Nothing here touches the database.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from quebec.arguments import Envelope, decode_envelope, with_counters
from quebec.clock import Clock
from quebec.engine.callbacks import run_perform
from quebec.engine.completer import Completion
from quebec.errors import UnknownJobClass
from quebec.hooks import call_hook
from quebec.job import BaseClass
from quebec.logger import job_context, job_logger
from quebec.outcome import Discarded, Failed, RetryAt, decide, error_info
from quebec.registry import Registry
from quebec.types import ClaimedJob, NewJob

log = logging.getLogger("quebec.worker")


class Executor:
    def __init__(self, registry: Registry, clock: Clock) -> None:
        self._registry = registry
        self._clock = clock

    def at_most_once(self, class_name: str) -> bool:
        cls = self._registry.get(class_name)
        return cls is not None and bool(cls.at_most_once)

    def perform(self, job: ClaimedJob) -> Completion:
        cls = self._registry.get(job.class_name)
        if cls is None:
            error = UnknownJobClass(
                f"job {job.id} in queue {job.queue_name!r} names class {job.class_name!r}, which is not "
                f"registered in this process; import the module that defines it, or pass its package to "
                f"`python -m quebec`"
            )
            log.error("job.unknown_class job_id=%s class=%s", job.id, job.class_name)
            return self._failed(job, error, None)
        try:
            envelope = decode_envelope(job.arguments)
        except Exception as exc:
            log.error("job.bad_arguments job_id=%s class=%s: %s", job.id, job.class_name, exc)
            return self._failed(job, exc, None)
        instance = self._instance(cls, job, envelope)
        with job_context(job.class_name, job.id, job.queue_name):
            try:
                run_perform(instance, envelope.args, envelope.kwargs, _seconds(cls.timeout))
            except Exception as exc:
                try:
                    return self._after_error(cls, instance, job, envelope, exc)
                except Exception as decide_error:
                    # e.g. a retry `wait` callable that returned nonsense: the job must
                    # still end somewhere visible, never stuck in claimed.
                    log.exception("job.outcome_failed job_id=%s class=%s", job.id, job.class_name)
                    return self._failed(job, decide_error, envelope, counted=True)
        return Completion("finish", job.id, job.class_name)

    def _instance(self, cls: type[BaseClass], job: ClaimedJob, envelope: Envelope) -> BaseClass:
        instance = object.__new__(cls)
        instance.id = job.id
        instance.active_job_id = job.active_job_id
        instance.queue_name = job.queue_name
        instance.executions = envelope.executions
        instance.scheduled_at = job.scheduled_at
        instance.logger = job_logger(job.class_name, job.id)
        vars(instance)["priority"] = job.priority
        return instance

    def _after_error(
        self, cls: type[BaseClass], instance: BaseClass, job: ClaimedJob, envelope: Envelope, exc: Exception
    ) -> Completion:
        decision = decide(cls, exc, dict(envelope.exception_executions))
        if isinstance(decision, RetryAt):
            counters = dict(envelope.exception_executions)
            counters[decision.strategy_key] = counters.get(decision.strategy_key, 0) + 1
            arguments = with_counters(job.arguments, executions=envelope.executions + 1, exception_executions=counters)
            log.info(
                "job.retry job_id=%s class=%s in=%.1fs error=%s",
                job.id,
                job.class_name,
                decision.delay,
                decision.error.exception_class,
            )
            next_run = NewJob(
                queue_name=job.queue_name,
                class_name=job.class_name,
                arguments=arguments,
                priority=job.priority,
                active_job_id=job.active_job_id or "",
                scheduled_at=self._clock.now() + timedelta(seconds=decision.delay),
                concurrency_key=job.concurrency_key,
            )
            return Completion("retry", job.id, job.class_name, next_run=next_run)
        if isinstance(decision, Discarded):
            if decision.handler is not None:
                try:
                    decision.handler(instance, exc)
                except Exception as handler_error:
                    log.exception(
                        "job.handler_failed job_id=%s class=%s reason=%s", job.id, job.class_name, decision.reason
                    )
                    return self._failed(job, handler_error, envelope)
            after_discard = getattr(instance, "after_discard", None)
            if decision.reason != "rescue_from" and callable(after_discard):
                call_hook(f"{job.class_name}.after_discard", after_discard)
            log.info("job.discarded job_id=%s class=%s reason=%s", job.id, job.class_name, decision.reason)
            return Completion("discard", job.id, job.class_name, error=decision.error)
        assert isinstance(decision, Failed)
        log.warning(
            "job.failed job_id=%s class=%s error=%s: %s",
            job.id,
            job.class_name,
            decision.error.exception_class,
            decision.error.message,
        )
        return self._failed(job, exc, envelope, counted=True)

    def _failed(
        self, job: ClaimedJob, exc: BaseException, envelope: Envelope | None, counted: bool = False
    ) -> Completion:
        arguments = None
        if envelope is not None and counted:
            counters = dict(envelope.exception_executions)
            key = f"[{type(exc).__name__}]"
            counters[key] = counters.get(key, 0) + 1
            arguments = with_counters(job.arguments, executions=envelope.executions + 1, exception_executions=counters)
        return Completion("fail", job.id, job.class_name, error=error_info(exc), arguments=arguments)


def _seconds(value: float | timedelta | None) -> float | None:
    if value is None:
        return None
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
