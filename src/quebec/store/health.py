"""Is the database there? One round trip, not retried (a health check must answer now)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from quebec.errors import DatabaseUnavailable
from quebec.store.database import Database


def ping(db: Database) -> None:
    """`SELECT 1` on a pooled connection; DatabaseUnavailable, in one sentence, when it fails."""
    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise DatabaseUnavailable(f"{db.display_url} did not answer: {reason}") from None
