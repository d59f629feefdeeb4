"""What a job does when its concurrency or rate limit says no: the wheel's two enums."""

from __future__ import annotations

from enum import Enum, EnumType


class _ListedEnum(EnumType):
    """dir() names the class's functions too, as from Python 3.12 (3.11 lists only members)."""

    def __dir__(cls) -> list[str]:
        return sorted({*super().__dir__(), *(name for name in vars(cls) if not name.startswith("_"))})


class ConcurrencyConflict(Enum, metaclass=_ListedEnum):
    Block = "block"
    Discard = "discard"

    # the wheel's lower-case spellings: functions returning the member
    block = staticmethod(lambda: ConcurrencyConflict.Block)
    discard = staticmethod(lambda: ConcurrencyConflict.Discard)


class RateLimitConflict(Enum, metaclass=_ListedEnum):
    Reschedule = "reschedule"
    Discard = "discard"

    reschedule = staticmethod(lambda: RateLimitConflict.Reschedule)
    discard = staticmethod(lambda: RateLimitConflict.Discard)


__all__ = ["ConcurrencyConflict", "RateLimitConflict"]
