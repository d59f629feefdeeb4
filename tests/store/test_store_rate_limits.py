"""Rate limits in the store: a sliding log per key, never more than `limit` starts in a window."""

from __future__ import annotations

from datetime import timedelta

from store_support import (
    clock_of,
    db_fixture,  # noqa: F401 - a fixture
    tables_fixture,  # noqa: F401 - a fixture
)

from quebec.store import Database, rate_limits

WINDOW = timedelta(seconds=2)


def take(db: Database, key: str = "ApiCallJob/us") -> object:
    return db.transact(rate_limits.take_slot, key=key, limit=3, window=WINDOW)


def test_the_window_slides_instead_of_resetting_at_a_boundary(db: Database) -> None:
    clock = clock_of(db)
    start = clock.now()
    assert take(db) is None
    clock.advance(1.5)
    assert take(db) is None and take(db) is None  # 3 starts within 1.5 s
    clock.advance(0.4)  # a fixed 2 s bucket could reset here; the window still holds all three
    assert take(db) == start + WINDOW + rate_limits.MARGIN
    clock.advance(0.2)  # the first start left the window
    assert take(db) is None
    assert take(db) == start + timedelta(seconds=1.5) + WINDOW + rate_limits.MARGIN


def test_keys_have_windows_of_their_own(db: Database) -> None:
    for _ in range(3):
        assert take(db, "ApiCallJob/us") is None
    assert take(db, "ApiCallJob/eu") is None
    assert take(db, "ApiCallJob/us") is not None
