"""`python -m quebec recurring list [--json]`: the recurring tasks, with their next run times.

Settings come from the same loader as Quebec(), so the CLI reads the application's tables.
A next-run function lives in the application's code: the CLI cannot compute such a task's
next run and says so.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import datetime

from quebec import recurring
from quebec.config import load_settings
from quebec.store import Database


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ValueError(f"{message}; see `python -m quebec recurring --help`")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m quebec recurring", description="List recurring tasks and their next runs.")
    p.add_argument("action", choices=["list"])
    p.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def run_recurring(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    db = Database.from_settings(load_settings())
    db.connect()
    try:
        listed = recurring.listing(db, {})
    finally:
        db.dispose()
    if args.json:
        rows = [
            {
                "key": item.task.key,
                "schedule": item.task.schedule,
                "class_name": item.task.class_name,
                "arguments": list(item.task.arguments),
                "queue_name": item.task.queue_name,
                "priority": item.task.priority,
                "static": item.task.static,
                "paused": item.task.paused_at is not None,
                "next_run_at": _iso(item.next_run),
                "last_run_at": _iso(item.last_run),
                "problem": item.problem,
            }
            for item in listed
        ]
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    if not listed:
        print("no recurring tasks")
        return 0
    print(f"{'KEY':<24} {'SCHEDULE':<32} {'CLASS':<24} {'NEXT RUN (UTC)':<20} LAST RUN (UTC)")
    for item in listed:
        nxt = _shown(item.next_run) if item.problem is None else "?"
        state = " (paused)" if item.task.paused_at is not None else ""
        print(
            f"{item.task.key:<24} {item.task.schedule:<32} {item.task.class_name:<24} {nxt:<20} "
            f"{_shown(item.last_run)}{state}"
        )
        if item.problem is not None:
            print(f"  ! {item.problem}")
    return 0


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat() + "Z"


def _shown(value: datetime | None) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M:%S}"
