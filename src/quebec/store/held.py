"""A write transaction held open across several store calls: the one of a `with qc.batch()` block.

Enqueues inside the block run in it, so the jobs become visible (and the batch starts)
at the outermost successful exit, and an exception escaping the block rolls them back.
Unlike Database.transact nothing is rerun: a transient error ends the block with the
error, and the rollback leaves nothing behind.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from quebec.store.database import Database

P = ParamSpec("P")
T = TypeVar("T")


class HeldTransaction:
    """One connection in one write transaction until commit() or rollback()."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._after: list[Callable[[], None]] = []
        self._conn = db.engine.connect()
        try:
            db.dialect.begin_write(self._conn)
        except BaseException:
            self._conn.close()
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
        try:
            self._conn.rollback()
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
