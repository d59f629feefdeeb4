"""A Quebec with one job in every state (`world`), and a TestClient on its dashboard (`client`).

Every test gets: two failed jobs (their argument and error carry `<script>`), one finished,
one ready, one scheduled an hour ahead, one concurrency-limited job ready and its sibling
blocked, a recurring task, a registered worker process.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import quebec
from quebec.store import processes
from quebec.types import ProcessInfo

warnings.filterwarnings("ignore", message=".*httpx.*")
from starlette.testclient import TestClient  # noqa: E402 - after the warning filter

BASE = "http://127.0.0.1:5006"
XSS_ARG = "<script>alert('arg')</script>"
XSS_ERROR = "<script>alert('error')</script>"
TOKEN = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class World:
    qc: Any
    failed: list[int]
    finished: int
    ready: int
    scheduled: int
    limited_ready: int
    blocked: int
    process_id: int
    classes: dict[str, Any]


class ChargeCard(quebec.BaseClass):
    """Always fails, with `<script>` in its message (its argument carries one too)."""

    def perform(self, text: str) -> None:
        raise ValueError(f"boom {XSS_ERROR}")


class SendEmail(quebec.BaseClass):
    def perform(self, n: int = 0) -> int:
        return n


class SyncAccount(quebec.BaseClass):
    concurrency_limit = 1
    concurrency_duration = 600

    def concurrency_key(self, n: int) -> str:
        return "shared"

    def perform(self, n: int) -> None:
        pass


def build_world(qc: Any) -> World:
    Boom, Fine, Limited = (qc.register_job(c) for c in (ChargeCard, SendEmail, SyncAccount))
    failed = [Boom.perform_later(qc, XSS_ARG).id, Boom.perform_later(qc, "second").id]
    for _ in failed:
        qc.drain_one().perform()
    finished = Fine.perform_later(qc, 1).id
    qc.drain_one().perform()
    ready = Fine.perform_later(qc, 2).id
    scheduled = Fine.set(wait=3600).perform_later(qc, 3).id
    limited_ready = Limited.perform_later(qc, 1).id
    blocked = Limited.perform_later(qc, 2).id
    qc.schedule("tick", Fine, "every hour", args=[7])
    pid = qc.db.transact(
        processes.register, info=ProcessInfo(kind="Worker", name="dash-test", pid=4242, hostname="test-host")
    )
    return World(qc, failed, finished, ready, scheduled, limited_ready, blocked, pid, {"Boom": Boom, "Fine": Fine})


def client_for(app: Any, host: str = "127.0.0.1") -> TestClient:
    return TestClient(app, base_url=BASE, client=(host, 50000))


def token_from(client: TestClient, page: str, **kw: Any) -> str:
    response = client.get(page, **kw)
    assert response.status_code == 200, response.text
    found = TOKEN.search(response.text)
    assert found, f"no CSRF token on {page}"
    return found.group(1)


def act(
    client: TestClient,
    path: str,
    data: dict[str, Any],
    *,
    page: str = "/jobs/failed",
    token: str | None = None,
    **kw: Any,
) -> Any:
    """POST an action as the browser does from `page`: same-origin, with the page's token."""
    body = {"csrf": token or token_from(client, page, **kw), **data}
    headers = {"Origin": BASE, "Sec-Fetch-Site": "same-origin", **kw.pop("headers", {})}
    return client.post(path, data=body, headers=headers, follow_redirects=False, **kw)


# Fixtures: a test module imports the ones it uses (`from dashboard_support import client_fixture, world_fixture`).
# Not a conftest.py: a second module named conftest would hide the root one's helpers.
@pytest.fixture(name="world")
def world_fixture(make_qc: Callable[..., Any]) -> World:
    return build_world(make_qc(recurring_pause=True))


@pytest.fixture(name="client")
def client_fixture(world: World) -> Iterator[TestClient]:
    with client_for(world.qc.asgi_app()) as c:
        yield c
