"""`python -m quebec failed list|retry|discard [ID ... | --all] [--class NAME] [--queue NAME] [--json]`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from quebec import ops
from quebec.store import Database


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ValueError(f"{message}; see `python -m quebec failed --help`")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m quebec failed", description="Inspect, retry or discard failed jobs.")
    p.add_argument("action", choices=["list", "retry", "discard"])
    p.add_argument("ids", nargs="*", type=int, help="job ids (jobs.id)")
    p.add_argument("--all", action="store_true", help="every failed job (narrow with --class / --queue)")
    p.add_argument("--class", dest="class_name")
    p.add_argument("--queue", dest="queue_name")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def run_failed(argv: Sequence[str], url: str) -> int:
    import os

    args = _parser().parse_args(list(argv))
    db = Database(url, prefix=_prefix(os.environ.get("QUEBEC_TABLE_NAME_PREFIX")))
    db.connect()
    try:
        if args.action == "list":
            rows = ops.failed_jobs(db, class_name=args.class_name, queue_name=args.queue_name)
            if args.json:
                json.dump(
                    [
                        {"id": r.id, "class_name": r.class_name, "queue_name": r.queue_name, "error": r.error}
                        for r in rows
                    ],
                    sys.stdout,
                )
                print()
            else:
                for r in rows:
                    error = r.error or {}
                    print(
                        f"{r.id:>8}  {r.class_name:<30} {r.queue_name:<15} "
                        f"{error.get('exception_class', '')}: {error.get('message', '')}"
                    )
                print(f"{len(rows)} failed job(s)")
            return 0
        if not args.ids and not args.all:
            raise ValueError(f"`failed {args.action}` needs job ids or --all")
        if args.all:
            fn = ops.retry_all_failed if args.action == "retry" else ops.discard_all_failed
            count = fn(db, class_name=args.class_name, queue_name=args.queue_name)
        else:
            single = ops.retry_failed if args.action == "retry" else ops.discard_failed
            count = single(db, args.ids)
        verb = "retried" if args.action == "retry" else "discarded"
        print(json.dumps({verb: count}) if args.json else f"{verb} {count} job(s)")
        return 0 if count or args.all else 1
    finally:
        db.dispose()


def _prefix(value: str | None) -> str:
    from quebec.identifiers import table_prefix

    return table_prefix(value)
