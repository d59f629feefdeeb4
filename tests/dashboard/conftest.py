"""Fixtures of the dashboard tests: `world` (a job in every state) and `client` on its dashboard."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from dashboard_support import TestClient, World, build_world, client_for


@pytest.fixture
def world(make_qc: Callable[..., Any]) -> World:
    return build_world(make_qc(recurring_pause=True))


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with client_for(world.qc.asgi_app()) as c:
        yield c
