"""The dashboard's routes, one module per page and its actions."""

from __future__ import annotations

from starlette.routing import BaseRoute

from quebec.dashboard.routes import batches, jobs, overview, processes, queues, recurring


def all_routes() -> list[BaseRoute]:
    return [*overview.routes, *queues.routes, *jobs.routes, *batches.routes, *recurring.routes, *processes.routes]
