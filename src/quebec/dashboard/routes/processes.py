"""Processes (kind, host, pid, heartbeat age, busy threads, the supervisor tree) and the
semaphores and blocked keys."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.responses import Response
from starlette.routing import Route

from quebec import ops
from quebec.dashboard.core import Context, view
from quebec.dashboard.render import Page, render
from quebec.store.key_listings import key_listing
from quebec.store.stats import ProcessRow


@dataclass
class Node:
    process: ProcessRow
    alive: bool
    depth: int = 0
    children: list[Node] = field(default_factory=list)


def tree(rows: list[ProcessRow], alive: set[int]) -> list[Node]:
    """Processes in supervisor order: each supervisor followed by its children, indented."""
    nodes = {p.id: Node(p, p.id in alive) for p in rows}
    roots: list[Node] = []
    for node in nodes.values():
        parent = nodes.get(node.process.supervisor_id or -1)
        (parent.children if parent is not None and parent is not node else roots).append(node)
    out: list[Node] = []

    def walk(node: Node, depth: int) -> None:
        node.depth = depth
        out.append(node)
        for child in node.children:
            walk(child, depth + 1)

    for root in roots:
        walk(root, 0)
    return out


def processes(page: Page, ctx: Context) -> Response:
    snapshot = ops.process_list(ctx.quebec.db)
    threshold = ctx.quebec.settings.process_alive_threshold
    alive = {p.id for p in snapshot.processes if (snapshot.as_of - p.last_heartbeat_at).total_seconds() < threshold}
    return render(page, "processes.html", nodes=tree(snapshot.processes, alive), now=snapshot.as_of)


def keys(page: Page, ctx: Context) -> Response:
    data = ctx.quebec.db.read(key_listing)
    return render(page, "keys.html", data=data, now=data.as_of)


routes = [Route("/processes", view(processes)), Route("/keys", view(keys))]
