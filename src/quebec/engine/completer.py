"""Completer: writes job outcomes back, successes in batches.

Successes are grouped: the completer takes everything that has arrived since its
last flush and finishes it with one `finish_many`. Under load that makes large
batches; when idle it flushes each job at once. Other outcomes get a transaction
each. While the database is unreachable outcomes are held and retried with capped
backoff, never dropped; a success not yet flushed when the process is killed runs
again (the documented price of batching).

An outcome the database refuses (any other error) must not block the ones behind it:
the batch is written again one outcome at a time, and one that still fails is set
aside and retried alone with backoff while the others go on. After `poison_after`
seconds it is recorded as a failure that says why (OutcomeWriteError), so the job
ends failed instead of claimed.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from quebec.engine.outcomes import OUTCOME_TYPES, Discarded, Failed, Finished, Outcome, Released, Rescheduled, Retried
from quebec.errors import DatabaseUnavailable, MissingTables
from quebec.events import JobEvent, JobEventKind
from quebec.store import Database, batch_completion, claimed
from quebec.store.results import Ending
from quebec.types import ErrorInfo, JobStatus

log = logging.getLogger("quebec.completer")
_MAX_BATCH = 1000
# Under load (the last batch held more than one outcome) the completer waits this long
# after the first outcome for others to arrive: fewer, larger transactions, at the price
# of a few ms before a finished job reads as finished. A lone outcome is written at once.
LOAD_NAP = 0.005
# How long an outcome the database refuses is retried before the job is failed instead.
POISON_AFTER = 30.0
# Errors that mean "the database cannot take any write now": hold everything, drop nothing.
_HOLD = (DatabaseUnavailable, MissingTables)
_REASON_MAX = 1000
_NAMES = [t.__name__ for t in OUTCOME_TYPES]


def write_outcomes(db: Database, *, process_id: int, outcomes: list[Outcome], preserve_finished: bool) -> list[int]:
    """Write the outcomes of jobs that `process_id` holds, now, in this thread.

    One transaction per kind, whatever the number of jobs: Finished and Discarded (the
    same transition in the tables) in one finish_many, Released in one release_many,
    Failed in one fail_many, Retried in one retry_many, Rescheduled in one reschedule_many.
    What is written is removed from `outcomes`, so a caller that retries after an error writes nothing twice. Returns
    the jobs whose claim the process no longer held (pruned meanwhile: they run again
    elsewhere). Anything that is not an outcome is refused before anything is written.
    """
    finished: list[Finished | Discarded] = []
    released: list[Released] = []
    failed: list[Failed] = []
    retried: list[Retried] = []
    rescheduled: list[Rescheduled] = []
    for outcome in outcomes:
        match outcome:
            case Finished() | Discarded():
                finished.append(outcome)
            case Released():
                released.append(outcome)
            case Failed():
                failed.append(outcome)
            case Retried():
                retried.append(outcome)
            case Rescheduled():
                rescheduled.append(outcome)
            case _:
                raise TypeError(f"cannot write {outcome!r}: an outcome is one of {_NAMES}")
    pid, lost = process_id, list[int]()
    if finished:
        ids, endings = [o.job_id for o in finished], _endings(finished)
        if members := _batch_members(finished):
            done = db.transact(
                batch_completion.finish_many,
                members=members,
                process_id=pid,
                job_ids=ids,
                preserve=preserve_finished,
                endings=endings,
            )
        else:
            done = db.transact(
                claimed.finish_many, process_id=pid, job_ids=ids, preserve=preserve_finished, endings=endings
            )
        lost += _written(outcomes, finished, done.job_ids)
    if released:
        lost += _written(
            outcomes, released, db.transact(claimed.release_many, process_id=pid, job_ids=[o.job_id for o in released])
        )
    if failed:
        failures = [claimed.Failure(o.job_id, o.error, o.arguments) for o in failed]
        if members := _batch_members(failed):
            held = db.transact(batch_completion.fail_many, members=members, process_id=pid, failures=failures)
        else:
            held = db.transact(claimed.fail_many, process_id=pid, failures=failures)
        lost += _written(outcomes, failed, held)
    if retried:
        runs = {o.job_id: o.next_run for o in retried}
        if members := _batch_members(retried):
            new_ids = db.transact(
                batch_completion.retry_many, members=members, process_id=pid, next_runs=runs, preserve=preserve_finished
            )
        else:
            new_ids = db.transact(claimed.retry_many, process_id=pid, next_runs=runs, preserve=preserve_finished)
        lost += _written(outcomes, retried, new_ids)
    if rescheduled:
        at = {o.job_id: o.run_at for o in rescheduled}
        lost += _written(outcomes, rescheduled, db.transact(claimed.reschedule_many, process_id=pid, run_at=at))
    if lost:
        log.warning(
            "job.claim_lost job_ids=%s: this process no longer held them (pruned?); they run again elsewhere", lost
        )
    if db.events:
        gone = set(lost)
        db.events.emit(_event(o) for o in (*finished, *failed, *retried) if o.job_id not in gone)
    return lost


def _event(outcome: Finished | Discarded | Failed | Retried) -> JobEvent:
    match outcome:
        case Finished():
            return JobEvent(JobEventKind.FINISHED, outcome.job_id, outcome.class_name)
        case Discarded(error=error):
            return JobEvent(JobEventKind.DISCARDED, outcome.job_id, outcome.class_name, error=error)
        case Failed(error=error):
            return JobEvent(JobEventKind.FAILED, outcome.job_id, outcome.class_name, error=error)
        case Retried():
            return JobEvent(JobEventKind.RETRIED, outcome.job_id, outcome.class_name)


def _batch_members(group: Sequence[Finished | Discarded | Failed | Retried]) -> dict[int, int]:
    """job → batch for the batch jobs of a group ({} for the usual flush: nothing is written for batches)."""
    return {o.job_id: o.batch_id for o in group if o.batch_id is not None}


def _endings(finished: Sequence[Finished | Discarded]) -> dict[int, Ending]:
    """The job_results entries of a finish batch: discards, and results perform returned."""
    out: dict[int, Ending] = {}
    for o in finished:
        if isinstance(o, Discarded):
            out[o.job_id] = Ending(o.job_id, JobStatus.DISCARDED)
        elif o.result is not None:
            out[o.job_id] = Ending(o.job_id, JobStatus.FINISHED, o.result)
    return out


def _written(outcomes: list[Outcome], group: Sequence[Outcome], held: Collection[int]) -> list[int]:
    """Take a written group out of `outcomes`; return the jobs of the group not held."""
    ids = {id(o) for o in group}
    outcomes[:] = [o for o in outcomes if id(o) not in ids]
    return sorted({o.job_id for o in group} - set(held))


@dataclass(frozen=True, slots=True)
class Stuck:
    """Outcomes waiting to be written for longer than a bound."""

    job_ids: tuple[int, ...]
    oldest: float  # seconds since the oldest was submitted


@dataclass(eq=False, slots=True)
class _Item:
    outcome: Outcome
    submitted: float
    # Set once the outcome failed to be written on its own: it is retried aside.
    first_failure: float | None = None
    next_try: float = 0.0
    attempts: int = 0
    last_error: str = ""
    gave_up: bool = False  # the outcome now is the OutcomeWriteError failure


class Completer:
    def __init__(
        self,
        db: Database,
        process_id: Callable[[], int],
        *,
        preserve_finished: bool,
        on_applied: Callable[[list[Outcome]], None] | None = None,
        poison_after: float = POISON_AFTER,
    ) -> None:
        self._db = db
        self._process_id = process_id
        self._preserve = preserve_finished
        self._on_applied = on_applied
        self._poison_after = poison_after
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._pending: dict[int, _Item] = {}  # id(item) → item, oldest first
        self._aside: list[_Item] = []  # refused once; retried alone (completer thread only)
        self._lock = threading.Lock()
        self._drained = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._loaded = False  # the last batch held more than one outcome

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="quebec-completer", daemon=True)
        self._thread.start()

    def pending_ids(self) -> set[int]:
        """Jobs whose outcome is submitted but not yet written."""
        with self._lock:
            return {item.outcome.job_id for item in self._pending.values()}

    def stuck(self, older_than: float) -> Stuck | None:
        """Outcomes in line for longer than `older_than` seconds, if any. Those set aside
        after a refusal do not count: they no longer hold anything up."""
        now = time.monotonic()
        late: list[_Item] = []
        with self._lock:
            for item in self._pending.values():  # oldest first: stop at the first one in time
                if now - item.submitted < older_than:
                    break
                if item.first_failure is None:
                    late.append(item)
        if not late:
            return None
        return Stuck(tuple(i.outcome.job_id for i in late), now - late[0].submitted)

    def submit(self, outcome: Outcome) -> None:
        if not isinstance(outcome, OUTCOME_TYPES):
            raise TypeError(f"cannot submit {outcome!r}: an outcome is one of {_NAMES}")
        item = _Item(outcome, time.monotonic())
        with self._lock:
            self._pending[id(item)] = item
        self._queue.put(item)

    def flush(self, timeout: float) -> bool:
        """Wait until everything submitted so far is written; False on timeout."""
        with self._drained:
            return self._drained.wait_for(lambda: not self._pending, timeout)

    def close(self, timeout: float) -> bool:
        done = self.flush(timeout)
        self._queue.put(None)
        return done

    # -- the completer thread -------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            batch, stop = self._arrived()
            self._loaded = len(batch) > 1
            if batch:
                self._write(batch)
            self._retry_aside()
            if stop:
                if self._pending:
                    log.warning(
                        "completer.closed_unwritten job_ids=%s: they run again once this process is pruned",
                        sorted(self.pending_ids()),
                    )
                return

    def _arrived(self) -> tuple[list[_Item], bool]:
        """What was submitted: wait for the first outcome (or until one set aside is due),
        then take what else is there; True once close() asked to stop."""
        try:
            item = self._queue.get(timeout=self._next_retry_in())
        except queue.Empty:
            return [], False
        if self._loaded and item is not None:
            time.sleep(LOAD_NAP)
        batch: list[_Item] = []
        while item is not None:
            batch.append(item)
            if len(batch) >= _MAX_BATCH:
                return batch, False
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return batch, False
        return batch, True

    def _next_retry_in(self) -> float | None:
        if not self._aside:
            return None
        return max(0.0, min(i.next_try for i in self._aside) - time.monotonic())

    def _write(self, batch: list[_Item]) -> None:
        """Write the batch; hold it through outages; set aside what the database refuses."""
        attempt = 0
        while batch:
            error = self._try(batch)
            if error is None:
                return
            if isinstance(error, _HOLD):
                attempt += 1
                delay = min(5.0, 0.05 * 2 ** min(attempt, 7))
                log.warning(
                    "completer.retry jobs=%d attempt=%d retry_in=%.2fs error=%s",
                    len(batch),
                    attempt,
                    delay,
                    _reason(error),
                    exc_info=attempt == 1,
                )
                time.sleep(delay)
            elif len(batch) > 1:
                log.warning("completer.batch_refused jobs=%d error=%s: writing each alone", len(batch), _reason(error))
                for item in list(batch):
                    self._write([item])
                return
            else:
                self._set_aside(batch.pop(), error)

    def _try(self, items: list[_Item]) -> BaseException | None:
        """One write_outcomes call; the items written are done and leave `items`."""
        outcomes = [i.outcome for i in items]
        error: BaseException | None = None
        try:
            write_outcomes(self._db, process_id=self._process_id(), outcomes=outcomes, preserve_finished=self._preserve)
        except BaseException as exc:  # noqa: BLE001 - sorted by the caller: hold, split or set aside
            error = exc
        left = {id(o) for o in outcomes}
        self._done([i for i in items if id(i.outcome) not in left])
        items[:] = [i for i in items if id(i.outcome) in left]
        return error

    def _set_aside(self, item: _Item, error: BaseException) -> None:
        now = time.monotonic()
        if item.first_failure is None:
            item.first_failure = now
        item.attempts += 1
        delay = min(5.0, 0.1 * 2 ** min(item.attempts, 6))
        item.next_try = now + delay
        item.last_error = _reason(error)
        self._aside.append(item)
        log.warning(
            "completer.outcome_refused job_id=%s outcome=%s attempt=%d retry_in=%.1fs error=%s",
            item.outcome.job_id,
            type(item.outcome).__name__,
            item.attempts,
            delay,
            item.last_error,
            exc_info=item.attempts == 1,
        )

    def _retry_aside(self) -> None:
        now = time.monotonic()
        due = [i for i in self._aside if i.next_try <= now]
        for item in due:
            self._aside.remove(item)
            assert item.first_failure is not None
            if not item.gave_up and now - item.first_failure >= self._poison_after:
                item.outcome = _write_error(item, now - item.first_failure)
                item.gave_up = True
                log.error(
                    "completer.outcome_replaced job_id=%s: %s; recording the job as failed instead",
                    item.outcome.job_id,
                    item.last_error,
                )
            self._write([item])

    def _done(self, items: list[_Item]) -> None:
        if not items:
            return
        if self._on_applied is not None:
            try:
                self._on_applied([i.outcome for i in items])
            except Exception:  # an observer's bug must not stop the writing
                log.exception("completer.on_applied_failed")
        with self._drained:
            for item in items:
                self._pending.pop(id(item), None)
            self._drained.notify_all()


def _write_error(item: _Item, seconds: float) -> Failed:
    """The failure recorded for a job whose own outcome could not be written."""
    outcome = item.outcome
    what = type(outcome).__name__
    if isinstance(outcome, Failed | Discarded):
        what += f" with {outcome.error.exception_class}"
    message = (
        f"could not record the outcome of job {outcome.job_id} ({what}) for {seconds:.0f}s: {item.last_error}; "
        f"the job is recorded as failed instead"
    )
    batch_id = None if isinstance(outcome, Released | Rescheduled) else outcome.batch_id
    return Failed(
        outcome.job_id, ErrorInfo("OutcomeWriteError", message), class_name=outcome.class_name, batch_id=batch_id
    )


def _reason(error: BaseException) -> str:
    """The database's own words (a driver error's message), on one line and cut short."""
    text = str(getattr(error, "orig", None) or error).strip().replace("\n", " ")
    return text if len(text) <= _REASON_MAX else text[:_REASON_MAX] + " …"
