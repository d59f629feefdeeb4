"""Key rotation: re-encrypt the sealed values stored in jobs.arguments and job_results.result.

Rows are found by the sealed marker in their text and walked by id in batches, one
transaction each, so a rotation of millions of rows never holds one long transaction and
can be stopped and run again (a row already under the first key is rewritten the same).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import bindparam, select, update

from quebec.encryption import ENCRYPTED_TAG
from quebec.store.database import Tx

TABLES = ("jobs", "job_results")
_MARK = f'%"{ENCRYPTED_TAG}":%'


def rotate_batch(
    tx: Tx, *, table: str, after_id: int, limit: int, rotate: Callable[[str], str]
) -> tuple[int, int | None]:
    """Re-encrypt up to `limit` sealed rows of `table` after `after_id`; returns how many
    changed and the id to continue after (None when the table is done)."""
    if table == "jobs":
        t, key, column = tx.tables.jobs, "id", "arguments"
    elif table == "job_results":
        if not tx.keeps_results:
            return 0, None
        t, key, column = tx.tables.job_results, "job_id", "result"
    else:
        raise ValueError(f"rotate_batch(table={table!r}) must be one of {TABLES}")
    id_col, text_col = t.c[key], t.c[column]
    rows = tx.conn.execute(
        select(id_col, text_col).where(id_col > after_id, text_col.like(_MARK)).order_by(id_col).limit(limit)
    ).all()
    changes = []
    for row_id, text in rows:
        rotated = _rotated(json.loads(text), rotate)
        new = json.dumps(rotated, separators=(",", ":"), ensure_ascii=False)
        if new != text:
            changes.append({"b_id": row_id, "b_text": new})
    if changes:
        tx.conn.execute(update(t).where(id_col == bindparam("b_id")).values({column: bindparam("b_text")}), changes)
    return len(changes), (rows[-1][0] if len(rows) == limit else None)


def _rotated(value: Any, rotate: Callable[[str], str]) -> Any:
    """`value` with every sealed `{"_quebec_encrypted": token}` in it re-encrypted."""
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get(ENCRYPTED_TAG), str):
            return {ENCRYPTED_TAG: rotate(value[ENCRYPTED_TAG])}
        return {k: _rotated(v, rotate) for k, v in value.items()}
    if isinstance(value, list):
        return [_rotated(v, rotate) for v in value]
    return value
