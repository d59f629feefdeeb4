"""A write transaction held open across several store calls: the one of a `with qc.batch()` block.

Enqueues inside the block run in it, so the jobs become visible (and the batch starts)
at the outermost successful exit, and an exception escaping the block rolls them back.
Unlike Database.transact nothing is rerun: a transient error ends the block with the
error, and the rollback leaves nothing behind.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from quebec.store.database import Database

log = logging.getLogger("quebec.batches")

P = ParamSpec("P")
T = TypeVar("T")


class HeldTransaction:
    """One connection in one write transaction until commit() or rollback()."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._after: list[Callable[[], None]] = []
        try:
            self._conn = db.engine.connect()
        except SQLAlchemyError as exc:
            raise db._gave_up(hold, exc) from None
        try:
            db.dialect.begin_write(self._conn)
        except BaseException as exc:
            self._conn.close()
            if isinstance(exc, SQLAlchemyError):
                raise db._gave_up(hold, exc) from None
            raise

    def run(self, fn: Callable[Concatenate[Any, P], T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(tx, ...)` inside the held transaction (its `now` read at this call)."""
        tx = self.db.join(self._conn)
        try:
            result = fn(tx, *args, **kwargs)
        except SQLAlchemyError as exc:
            raise self.db._gave_up(fn, exc) from None
        self._after.extend(tx.after_commit)
        return result

    def commit(self) -> None:
        try:
            self._conn.commit()
            self.db.dialect.after_commit(self._conn)
        except SQLAlchemyError as exc:
            raise self.db._gave_up(self.commit, exc) from None
        finally:
            self._conn.close()
        for done in self._after:
            done()

    def rollback(self) -> None:
        """Roll back; a connection already lost has nothing left to roll back (logged, not
        raised: the error that ended the block is the one to see)."""
        if self._conn.closed:  # a commit that failed closed it: nothing is left to roll back
            return
        try:
            self._conn.rollback()
        except SQLAlchemyError as exc:
            log.warning("batch.rollback_failed: %s (the transaction is gone with its connection)", exc)
        finally:
            self._conn.close()


# The transaction each Database holds open in this context (id(db) → it), None when none.
_HELD: contextvars.ContextVar[dict[int, HeldTransaction] | None] = contextvars.ContextVar("quebec_held", default=None)


def held_for(db: Database) -> HeldTransaction | None:
    """The transaction a `with qc.batch()` block of this context holds on `db`, if any."""
    held = _HELD.get()
    return None if held is None else held.get(id(db))


Frame = tuple[HeldTransaction, contextvars.Token[dict[int, HeldTransaction] | None]]


def hold(db: Database) -> Frame:
    """Begin a held transaction on `db` for this context; release() it with the token."""
    held = HeldTransaction(db)
    return held, _HELD.set({**(_HELD.get() or {}), id(db): held})


def release(token: contextvars.Token[dict[int, HeldTransaction] | None]) -> None:
    _HELD.reset(token)
