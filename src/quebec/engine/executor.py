"""Executor: perform one claimed job and turn what happened into an outcome.

Resolves the class (an unknown one fails the job, the worker goes on), decodes the
arguments, runs perform, and asks outcome.decide() what an exception means. User
handlers (retry exhausted, discard_on, rescue_from) run here, never inside a
transaction. Nothing here touches the database.

Every way out of perform ends in an outcome, BaseExceptions included: sys.exit() or
KeyboardInterrupt raised by a job fails that job (or retries it, if a retry_on
strategy names the class) and the worker goes on, as Celery and Sidekiq do. Only a
dead process leaves a claim behind, and pruning recovers it.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any

from quebec import outcome, values
from quebec.arguments import Envelope, decode_envelope, with_counters
from quebec.clock import Clock
from quebec.continuable import Continuable
from quebec.encryption import ENCRYPTED_TAG
from quebec.engine.callbacks import run_perform
from quebec.engine.outcomes import Discarded, Failed, Finished, Outcome, run_again
from quebec.engine.resumption import attach, resumed
from quebec.errors import UnknownJobClass
from quebec.events import JobEvent, JobEventKind, JobEvents
from quebec.hooks import call_hook
from quebec.job import BaseClass
from quebec.logger import job_context, job_logger
from quebec.outcome import decide, error_info
from quebec.registry import Registry
from quebec.sealing import Sealing
from quebec.types import ClaimedJob, ErrorInfo

log = logging.getLogger("quebec.worker")
_LOGGED_MESSAGE = 500  # characters of a failure message in the log line (the row keeps more)


class Executor:
    def __init__(
        self,
        registry: Registry,
        clock: Clock,
        sealing: Sealing | None = None,
        events: JobEvents | None = None,
        stopping: threading.Event | None = None,
    ) -> None:
        self._registry = registry
        self._clock = clock
        self._sealing = sealing or Sealing(None, encrypt_all=False)
        self._events = events or JobEvents()
        # Set when the process shuts down gracefully: a Continuable job's next checkpoint
        # raises JobInterrupted, and the job is enqueued again with its progress.
        self._stopping = stopping or threading.Event()

    @property
    def stopping(self) -> threading.Event:
        """Set while this executor's process shuts down: Continuable jobs stop at their next checkpoint."""
        return self._stopping

    def at_most_once(self, class_name: str) -> bool:
        cls = self._registry.get(class_name)
        return cls is not None and bool(cls.at_most_once)

    def perform(self, job: ClaimedJob) -> Outcome:
        try:
            return self._perform(job)
        except BaseException as exc:  # noqa: BLE001 - our own bug, or an error landing outside perform
            log.exception("job.executor_failed job_id=%s class=%s", job.id, job.class_name)
            return self._failed(job, exc, None)

    def _perform(self, job: ClaimedJob) -> Outcome:
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
            envelope = decode_envelope(job.arguments, self._sealing.cipher)
        except Exception as exc:
            log.error("job.bad_arguments job_id=%s class=%s: %s", job.id, job.class_name, exc)
            return self._failed(job, exc, None)
        instance = self._instance(cls, job, envelope)
        continuation = (
            attach(instance, job, envelope, self._stopping.is_set) if isinstance(instance, Continuable) else None
        )
        if self._events:
            self._events.emit([JobEvent(JobEventKind.STARTED, job.id, job.class_name, job.queue_name)])
        with job_context(job.class_name, job.id, job.queue_name, jid=job.active_job_id or None, target=cls.__module__):
            try:
                returned = run_perform(instance, envelope.args, envelope.kwargs, _seconds(cls.timeout))
            except BaseException as exc:  # noqa: BLE001 - every way out of perform is an outcome
                try:
                    if continuation is not None:
                        again = resumed(cls, job, envelope, continuation, exc, self._clock)
                        if again is not None:
                            return again
                    return self._after_error(cls, instance, job, envelope, exc)
                except BaseException as decide_error:  # noqa: BLE001
                    # e.g. a retry `wait` callable that returned nonsense: the job must
                    # still end somewhere visible, never stuck in claimed.
                    log.exception("job.outcome_failed job_id=%s class=%s", job.id, job.class_name)
                    return self._failed(job, decide_error, envelope, counted=True)
        return Finished(job.id, job.class_name, self._result_json(cls, job, returned))

    def _result_json(self, cls: type[BaseClass], job: ClaimedJob, value: Any) -> str | None:
        """perform's return value as stored in job_results (sealed for encrypted classes), or
        None (nothing to keep).

        A value that cannot be stored is not, and says so at WARNING: the job did its work,
        so it is not failed (and retried) for what it returned.
        """
        if value is None or not cls.store_result:
            return None
        try:
            text = values.dumps(value)
            seal = self._sealing.sealer(cls)
            return text if seal is None else values.dumps({ENCRYPTED_TAG: seal(text)})
        except (TypeError, ValueError, RecursionError) as exc:
            log.warning(
                "job.result_not_stored job_id=%s class=%s type=%s: %s; return JSON data (dict, list, str, "
                "number, datetime, UUID, Decimal…) or set store_result = False",
                job.id,
                job.class_name,
                type(value).__qualname__,
                exc,
            )
            return None

    def _instance(self, cls: type[BaseClass], job: ClaimedJob, envelope: Envelope) -> BaseClass:
        instance = object.__new__(cls)
        instance.id = job.id
        instance.active_job_id = job.active_job_id
        instance.queue_name = job.queue_name
        instance.executions = envelope.executions
        instance.scheduled_at = job.scheduled_at
        instance.logger = job_logger(job.class_name, job.id)
        # Plain instance attributes shadow the class-level defaults (and `priority`, which
        # is also a class option); read by code inside perform, as in the wheel.
        fields = vars(instance)
        fields["priority"] = job.priority
        fields["_stored_arguments"] = job.arguments  # self.arguments reads it when asked
        fields["created_at"] = job.created_at
        return instance

    def _after_error(
        self, cls: type[BaseClass], instance: BaseClass, job: ClaimedJob, envelope: Envelope, exc: BaseException
    ) -> Outcome:
        match decide(cls, exc, dict(envelope.exception_executions)):
            case outcome.RetryAt(delay=delay, strategy_key=key, error=error):
                counters = dict(envelope.exception_executions)
                counters[key] = counters.get(key, 0) + 1
                arguments = with_counters(
                    job.arguments, executions=envelope.executions + 1, exception_executions=counters
                )
                what = error.exception_class
                log.info("job.retry job_id=%s class=%s in=%.1fs error=%s", job.id, job.class_name, delay, what)
                return run_again(job, arguments, self._clock.now() + timedelta(seconds=delay))
            case outcome.Discarded(handler=handler, reason=reason, error=error):
                if handler is not None:
                    try:
                        handler(instance, exc)
                    except BaseException as handler_error:  # noqa: BLE001
                        log.exception("job.handler_failed job_id=%s class=%s reason=%s", job.id, job.class_name, reason)
                        return self._failed(job, handler_error, envelope)
                after_discard = getattr(instance, "after_discard", None)
                if reason != "rescue_from" and callable(after_discard):
                    call_hook(f"{job.class_name}.after_discard", after_discard)
                log.info("job.discarded job_id=%s class=%s reason=%s", job.id, job.class_name, reason)
                return Discarded(job.id, error, job.class_name)
            case outcome.Failed(error=error):
                log.warning(
                    "job.failed job_id=%s class=%s error=%s: %s",
                    job.id,
                    job.class_name,
                    error.exception_class,
                    error.message[:_LOGGED_MESSAGE],
                )
                return self._failed(job, exc, envelope, counted=True, error=error)
            case decision:
                raise TypeError(f"decide() returned {decision!r}, which the executor does not know")

    def _failed(
        self,
        job: ClaimedJob,
        exc: BaseException,
        envelope: Envelope | None,
        counted: bool = False,
        error: ErrorInfo | None = None,
    ) -> Failed:
        """Failed with `exc` (its `error` info when decide() made it already); `counted`
        raises the job's failure counters in its arguments."""
        arguments = None
        if envelope is not None and counted:
            counters = dict(envelope.exception_executions)
            key = f"[{type(exc).__name__}]"
            counters[key] = counters.get(key, 0) + 1
            arguments = with_counters(job.arguments, executions=envelope.executions + 1, exception_executions=counters)
        return Failed(job.id, error or error_info(exc), arguments, job.class_name)


def _seconds(value: float | timedelta | None) -> float | None:
    if value is None:
        return None
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
