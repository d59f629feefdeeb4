"""Rate limits at the start of a job: take a slot of its key's sliding window, or hold it back.

Called on the lane thread just before perform, so the window counts real starts. A job
its window refuses is rescheduled to when a slot frees (RateLimitConflict.Reschedule,
the default; spread by job id so that the jobs waiting on one key do not all come back
in the same instant) or dropped (Discard). A rate_limit_key that raises fails the job.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from quebec.arguments import decode_envelope
from quebec.conflicts import RateLimitConflict
from quebec.encryption import Cipher
from quebec.engine.outcomes import Discarded, Failed, Outcome, Released, Rescheduled
from quebec.errors import DatabaseUnavailable
from quebec.flow_options import rate_limit_key_of
from quebec.outcome import error_info
from quebec.registry import Registry
from quebec.store import Database, rate_limits
from quebec.types import ClaimedJob, ErrorInfo

log = logging.getLogger("quebec.worker")


class RateLimiter:
    def __init__(self, db: Database, registry: Registry, cipher: Cipher | None = None) -> None:
        self._db = db
        self._registry = registry
        self._cipher = cipher  # an encrypted job's key is computed from its opened arguments

    def hold_back(self, job: ClaimedJob) -> Outcome | None:
        """None: the job may start now (its slot is taken). Otherwise what becomes of it instead."""
        cls = self._registry.get(job.class_name)
        limit = getattr(cls, "rate_limit_max", None)
        if cls is None or limit is None:
            return None
        try:
            envelope = decode_envelope(job.arguments, self._cipher)
        except Exception:  # noqa: BLE001 - the executor fails the job with the reason
            return None
        try:
            key = rate_limit_key_of(cls, envelope.args, envelope.kwargs)
        except Exception as exc:  # noqa: BLE001 - a user's method: the job fails, the worker goes on
            log.error("job.rate_limit_key_failed job_id=%s class=%s: %r", job.id, job.class_name, exc)
            return Failed(job.id, error_info(exc), class_name=job.class_name)
        window: timedelta = cls.rate_limit_duration  # type: ignore[attr-defined]
        try:
            retry_at = self._db.transact(rate_limits.take_slot, key=key, limit=limit, window=window)
        except DatabaseUnavailable:
            return Released(job.id, job.class_name)  # runs again once the database answers
        if retry_at is None:
            return None
        if getattr(cls, "rate_limit_on_throttle", None) is RateLimitConflict.Discard:
            log.info("job.throttled job_id=%s class=%s key=%s: discarded", job.id, job.class_name, key)
            message = f"{limit} starts of {key} in {window.total_seconds():g}s already (rate_limit_on_throttle=Discard)"
            return Discarded(job.id, ErrorInfo("RateLimited", message), job.class_name)
        run_at = retry_at + timedelta(milliseconds=job.id % 100)
        log.debug("job.throttled job_id=%s class=%s key=%s: rescheduled to %s", job.id, job.class_name, key, run_at)
        return Rescheduled(job.id, run_at, job.class_name)
