"""The benchmark scenarios against PgQueuer (run in its own venv; see peers.py).

    <venv>/bin/python bench/peer_pgqueuer.py --impl pgqueuer --url postgresql://... --prefix pb_1a2b \\
        --scenario drain --threads 8 --jobs 10000

PgQueuer's objects live in the PostgreSQL schema named by ``--prefix`` (``PGQUEUER_SCHEMA``; its
NOTIFY channel is ``<schema>_ch``), created by ``Queries.install()``; run.py drops the schema after.
Its defaults otherwise, as its own CLI runs it: asyncpg, uvloop, an ``async def`` entrypoint.
``--threads N`` is ``QueueManager.run(batch_size=N)``: N jobs fetched per dequeue (its default is
10), every one run as an asyncio task at once. (An entrypoint ``concurrency_limit=N``, the closer
match of N threads, made it slower here: 102 against 115 jobs/s with N=1, 852 against 749 with 8
on a busy machine, and a p99 pickup of 1.1 s.)
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from typing import Any

from common import base_parser, peer_main
from dbutil import schema_name

KIND = "pgqueuer"


class PgQueuerPeer:
    kind = KIND

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.conn: Any = None
        self.queries: Any = None
        self.worker_conn: Any = None
        self.qm: Any = None
        self.task: asyncio.Task[None] | None = None

    async def setup(self, install: bool) -> None:
        import asyncpg
        from pgqueuer import Queries

        self.conn = await asyncpg.connect(self.dsn)
        self.queries = Queries.from_asyncpg_connection(self.conn)
        if install:
            await self.queries.install()

    async def enqueue(self, arg: float) -> None:
        await self.queries.enqueue("noop", repr(arg).encode())

    async def enqueue_many(self, args: list[float]) -> None:
        await self.queries.enqueue(["noop"] * len(args), [repr(a).encode() for a in args], [0] * len(args))

    async def start_worker(self, threads: int, perform: Callable[[float], None]) -> None:
        import asyncpg
        from pgqueuer import Queries, QueueManager

        self.worker_conn = await asyncpg.connect(self.dsn)
        self.qm = QueueManager(Queries.from_asyncpg_connection(self.worker_conn))

        @self.qm.entrypoint("noop")
        async def noop(job: Any) -> None:
            perform(float(job.payload))

        self.task = asyncio.create_task(self.qm.run(batch_size=threads))

    async def stop_worker(self) -> None:
        if self.qm is None or self.task is None:
            return
        self.qm.shutdown.set()
        try:
            await asyncio.wait_for(self.task, 15)
        except (TimeoutError, asyncio.CancelledError):
            sys.stderr.write("peer_pgqueuer: the QueueManager did not stop within 15 s\n")
        self.qm = None

    async def close(self) -> None:
        for conn in (self.conn, self.worker_conn):
            if conn is not None and not conn.is_closed():
                await conn.close()


def main() -> None:
    args = base_parser(__doc__, [KIND]).parse_args()
    schema = schema_name(args.prefix)
    os.environ["PGQUEUER_SCHEMA"] = schema
    os.environ["PGQUEUER_CHANNEL"] = f"{schema}_ch"
    try:
        import uvloop

        runner: Callable[[Any], Any] = uvloop.run
    except ImportError:
        runner = asyncio.run
    dsn = "postgresql" + args.url[args.url.index(":") :]
    peer_main(PgQueuerPeer(dsn), args, __file__, runner)


if __name__ == "__main__":
    main()
