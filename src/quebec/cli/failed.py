"""`python -m quebec failed list|retry|discard [ID ... | --all] [--class NAME] [--queue NAME] [--json]`.

Settings (URL, table prefix, ssl, pool) come from the same loader as Quebec(): QUEBEC_*
variables and queue.yml, so the CLI and the application always open the same tables.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from quebec import ops
from quebec.config import load_settings
from quebec.store import Database

# jobs.id is a 64-bit integer on PostgreSQL and MySQL, SQLite's INTEGER too.
MAX_JOB_ID = 2**63 - 1


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ValueError(f"{message}; see `python -m quebec failed --help`")


def _job_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"job id {text!r} is not a number; ids are whole numbers (jobs.id)") from None
    if not 1 <= value <= MAX_JOB_ID:
        raise argparse.ArgumentTypeError(f"job id {text} is out of range; ids run from 1 to {MAX_JOB_ID}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m quebec failed", description="Inspect, retry or discard failed jobs.")
    p.add_argument("action", choices=["list", "retry", "discard"])
    p.add_argument("ids", nargs="*", type=_job_id, help="job ids (jobs.id)")
    p.add_argument("--all", action="store_true", help="every failed job (narrow with --class / --queue)")
    p.add_argument("--class", dest="class_name")
    p.add_argument("--queue", dest="queue_name")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def run_failed(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    if args.action != "list" and not args.ids and not args.all:
        raise ValueError(f"`failed {args.action}` needs job ids or --all")
    db = Database.from_settings(load_settings())
    db.connect()
    try:
        if args.action == "list":
            _list(db, args.class_name, args.queue_name, as_json=args.json)
            return 0
        verb = "retried" if args.action == "retry" else "discarded"
        if args.all:
            fn = ops.retry_all_failed if args.action == "retry" else ops.discard_all_failed
            count = fn(db, class_name=args.class_name, queue_name=args.queue_name)
            print(json.dumps({verb: count}) if args.json else f"{verb} {count} job(s)")
            return 0
        single = ops.retry_failed if args.action == "retry" else ops.discard_failed
        # One id at a time, so that each one not acted on can be named with its state.
        missed = [job_id for job_id in dict.fromkeys(args.ids) if not single(db, [job_id])]
        count = len(dict.fromkeys(args.ids)) - len(missed)
        print(json.dumps({verb: count}) if args.json else f"{verb} {count} job(s)")
        if missed:
            raise ValueError(
                f"{_not_failed(db, missed)}, so {'it was' if len(missed) == 1 else 'they were'} not {verb}"
            )
        return 0
    finally:
        db.dispose()


def _not_failed(db: Database, job_ids: Sequence[int]) -> str:
    """'job 7 is finished, not failed; job 9 does not exist' for ids a retry/discard skipped."""
    parts = []
    for job_id in job_ids:
        row = ops.get_job(db, job_id)
        parts.append(f"job {job_id} does not exist" if row is None else f"job {job_id} is {row.state}, not failed")
    return "; ".join(parts)


def _list(db: Database, class_name: str | None, queue_name: str | None, *, as_json: bool) -> None:
    rows = ops.failed_jobs(db, class_name=class_name, queue_name=queue_name)
    if as_json:
        json.dump(
            [{"id": r.id, "class_name": r.class_name, "queue_name": r.queue_name, "error": r.error} for r in rows],
            sys.stdout,
        )
        print()
        return
    for r in rows:
        error = r.error or {}
        print(
            f"{r.id:>8}  {r.class_name:<30} {r.queue_name:<15} "
            f"{error.get('exception_class', '')}: {error.get('message', '')}"
        )
    print(f"{len(rows)} failed job(s)")
