"""Count done jobs (ours, the wheel's or a peer's) with plain SQL until all are (the drain's helper process).

Prints ``READY <finished>`` once connected, then exactly one of::

    DONE <unix time when the count reached --expect> <count>
    TIMEOUT <unix time> <count>
    ERROR <message>

It runs in its own process (under the harness interpreter, which has the drivers) so that polling neither
needs drivers in the Rust wheel's venv nor competes for the measured process's GIL.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from dbutil import DONE_SQL, connect, count_done  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--url", required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--kind", default="quebec", choices=sorted(DONE_SQL), help="whose tables to count")
    p.add_argument("--expect", type=int, required=True)
    p.add_argument("--interval", type=float, default=0.05)
    p.add_argument("--timeout", type=float, default=300.0)
    args = p.parse_args(argv)
    try:
        conn = connect(args.url)
        count = count_done(conn, args.kind, args.prefix, args.expect)
    except Exception as exc:
        print(f"ERROR {type(exc).__name__}: {exc}".replace("\n", " "), flush=True)
        return 1
    print(f"READY {count}", flush=True)
    deadline = time.monotonic() + args.timeout
    try:
        while True:
            count = count_done(conn, args.kind, args.prefix, args.expect)
            now = time.time()
            if count >= args.expect:
                print(f"DONE {now:.6f} {count}", flush=True)
                return 0
            if time.monotonic() > deadline:
                print(f"TIMEOUT {now:.6f} {count}", flush=True)
                return 2
            time.sleep(args.interval)
    except Exception as exc:
        print(f"ERROR {type(exc).__name__}: {exc}".replace("\n", " "), flush=True)
        return 1
    finally:
        conn.close()


if __name__ == "__main__":
    sys.exit(main())
