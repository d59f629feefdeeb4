"""active_job_id values: 12 random lowercase alphanumerics, the shape the Rust wheel writes."""

from __future__ import annotations

import os
import secrets

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
# os.urandom bytes below 252 (= 7 × 36) map uniformly onto the 36 characters.
_ID_TABLE = bytes(ord(_ALPHABET[i % 36]) for i in range(252)) + bytes(4)
_ID_REJECT = bytes(range(252, 256))


def new_active_job_ids(count: int) -> list[str]:
    """`count` ids like new_active_job_id(), drawn in one go for bulk enqueues."""
    need = 12 * count
    pool = b""
    while len(pool) < need:
        pool += os.urandom(need - len(pool) + 16).translate(_ID_TABLE, _ID_REJECT)
    text = pool[:need].decode("ascii")
    return [text[i : i + 12] for i in range(0, need, 12)]


def new_active_job_id() -> str:
    """12 random lowercase alphanumerics, the shape of the wheel's `active_job_id`."""
    n = secrets.randbelow(36**12)  # one draw, then base 36: 5 µs against 23 for 12 secrets.choice()
    digits = []
    for _ in range(12):
        n, digit = divmod(n, 36)
        digits.append(_ALPHABET[digit])
    return "".join(digits)
