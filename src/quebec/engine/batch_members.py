"""BatchMemberExecutor: the outcome of a batch job names its batch, for the completer.

The completer writes a batch job's end in the transaction of its outcome (store/
batch_completion.py); it knows which jobs those are from `outcome.batch_id`, read here from
the envelope the job was claimed with. A job outside batches pays one substring test.
"""

from __future__ import annotations

import dataclasses

from quebec.batch_context import envelope_batch_id
from quebec.engine.executor import Executor
from quebec.engine.outcomes import Discarded, Failed, Finished, Outcome, Retried
from quebec.types import ClaimedJob

_MARK = '"batch_id":'


class BatchMemberExecutor(Executor):
    """The worker's executor with each batch job's outcome marked with its batch.

    Like MeteredExecutor it takes the wrapped executor's state rather than building one.
    """

    def __init__(self, inner: Executor) -> None:
        self.__dict__.update(vars(inner))
        self._inner = inner

    def perform(self, job: ClaimedJob) -> Outcome:
        outcome = self._inner.perform(job)
        arguments = job.arguments
        if arguments is None or _MARK not in arguments:
            return outcome
        return with_batch(outcome, envelope_batch_id(arguments))


def with_batch(outcome: Outcome, batch_id: int | None) -> Outcome:
    """`outcome` marked with `batch_id` (unchanged when None, or an outcome that ends nothing)."""
    if batch_id is None or not isinstance(outcome, Finished | Failed | Retried | Discarded):
        return outcome
    return dataclasses.replace(outcome, batch_id=batch_id)
