"""The benchmark scenarios against Procrastinate (run in its own venv; see peers.py).

    <venv>/bin/python bench/peer_procrastinate.py --impl procrastinate --url postgresql://... \\
        --prefix pb_1a2b --scenario drain --threads 8 --jobs 10000

Procrastinate's tables have fixed names, so each scenario gets a PostgreSQL schema of its own
(``--prefix``), put first on the connections' ``search_path``; its schema is applied with
``apply_schema_async()`` and run.py drops the schema after. Its defaults otherwise: the psycopg
connector, an ``async def`` task, LISTEN/NOTIFY on, jobs kept after they succeed.
``--threads N`` is the worker's ``concurrency=N``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable
from urllib.parse import quote

from common import base_parser, peer_main
from dbutil import schema_name

KIND = "procrastinate"


class ProcrastinatePeer:
    kind = KIND

    def __init__(self, dsn: str, schema: str) -> None:
        import procrastinate

        self.dsn, self.schema = dsn, schema
        sep = "&" if "?" in dsn else "?"
        conninfo = f"{dsn}{sep}options={quote(f'-csearch_path={schema}')}"
        self.app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))
        self.perform: Callable[[float], None] = lambda arg: None

        @self.app.task(name="noop")
        async def noop(arg: float) -> None:
            self.perform(arg)

        self.noop = noop
        self.opened = False
        self.task: asyncio.Task[None] | None = None

    async def setup(self, install: bool) -> None:
        if install:
            import psycopg

            async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
                await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
        await self.app.open_async()
        self.opened = True
        if install:
            await self.app.schema_manager.apply_schema_async()

    async def enqueue(self, arg: float) -> None:
        await self.noop.defer_async(arg=arg)

    async def enqueue_many(self, args: list[float]) -> None:
        await self.noop.batch_defer_async(*({"arg": a} for a in args))

    async def start_worker(self, threads: int, perform: Callable[[float], None]) -> None:
        self.perform = perform
        self.task = asyncio.create_task(
            self.app.run_worker_async(concurrency=threads, wait=True, install_signal_handlers=False)
        )

    async def stop_worker(self) -> None:
        if self.task is None:
            return
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(self.task, 15)
        if not self.task.done():
            sys.stderr.write("peer_procrastinate: the worker did not stop within 15 s\n")
        self.task = None

    async def close(self) -> None:
        if self.opened:
            await self.app.close_async()


def main() -> None:
    args = base_parser(__doc__, [KIND]).parse_args()
    schema = schema_name(args.prefix)
    dsn = "postgresql" + args.url[args.url.index(":") :]
    peer_main(ProcrastinatePeer(dsn, schema), args, __file__)


if __name__ == "__main__":
    main()
