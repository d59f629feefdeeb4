"""The dashboard in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright):
every page opens with no script or CSP error, the buttons change the database, and the
lists refresh by themselves.

Screenshots of every page go to docs/screenshots/ when QUEBEC_SCREENSHOTS=1 (to refresh the
committed set), else to the test's tmp_path, so a test run leaves the tree clean.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dashboard_support import World, world_fixture  # noqa: F401 - fixtures

from quebec.types import JobState

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
PAGES = {
    "overview": "/",
    "queues": "/queues",
    "ready": "/jobs/ready",
    "scheduled": "/jobs/scheduled",
    "blocked": "/jobs/blocked",
    "in-progress": "/jobs/in-progress",
    "failed": "/jobs/failed",
    "finished": "/jobs/finished",
    "recurring": "/recurring",
    "processes": "/processes",
    "keys": "/keys",
    "batches": "/batches",
}

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a dev dependency")
if not CHROMIUM.exists():
    pytest.skip("needs Debian's chromium at /usr/bin/chromium (.ci/run installs it)", allow_module_level=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    where = ROOT / "docs" / "screenshots" if os.environ.get("QUEBEC_SCREENSHOTS") == "1" else tmp_path
    where.mkdir(parents=True, exist_ok=True)
    return where


@pytest.fixture
def served(world: World) -> Iterator[str]:
    server = world.qc.start_control_plane("127.0.0.1:0")
    try:
        yield server.url
    finally:
        world.qc.stop_control_plane()


@pytest.fixture
def browser_page(served: str) -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.problems = []  # type: ignore[attr-defined]
            page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
            page.on("pageerror", lambda e: page.problems.append(str(e)))
            yield page
        finally:
            browser.close()


def test_every_page_opens_without_errors(world: World, served: str, browser_page: Any, shots: Path) -> None:
    page = browser_page
    for name, path in PAGES.items():
        response = page.goto(served + path)
        assert response is not None and response.status == 200, name
        assert page.evaluate("typeof htmx") == "object", f"htmx did not load on {name}"
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    page.goto(f"{served}/job/{world.failed[0]}")
    assert "ValueError" in page.inner_text("main")
    page.screenshot(path=str(shots / "job.png"), full_page=True)
    assert page.problems == []


def test_buttons_retry_discard_unblock(world: World, served: str, browser_page: Any) -> None:
    page, qc = browser_page, world.qc
    page.goto(served + "/jobs/failed")
    page.locator(f"#job-{world.failed[0]}").get_by_role("button", name="Retry").click()
    page.get_by_text("Retried 1 failed job(s).").wait_for()
    assert qc.get_job(world.failed[0]).state is JobState.READY
    page.locator(f"#job-{world.failed[1]}").get_by_role("button", name="Discard").click()
    page.get_by_text("Discarded 1 failed job(s).").wait_for()
    assert qc.get_job(world.failed[1]).status.value == "discarded"
    page.goto(served + "/jobs/blocked")
    page.locator(f"#job-{world.blocked}").get_by_role("button", name="Unblock").click()
    page.get_by_text("Unblocked 1 job(s).").wait_for()
    assert qc.get_job(world.blocked).state is JobState.READY
    assert page.problems == []


def test_filter_then_discard_the_ticked_rows(world: World, served: str, browser_page: Any) -> None:
    page, qc = browser_page, world.qc
    page.goto(served + "/jobs/failed")
    page.get_by_label("Error contains").fill("boom")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**error=boom**")
    for job_id in world.failed:
        page.get_by_label(f"select job {job_id}").check()
    page.locator("p.actions").get_by_role("button", name="Discard").click()
    page.get_by_text("Discarded 2 failed job(s).").wait_for()
    assert all(qc.get_job(i).status.value == "discarded" for i in world.failed)
    assert "error=boom" in page.url  # back on the filtered list
    assert page.problems == []


def test_buttons_pause_resume_and_run_now(world: World, served: str, browser_page: Any) -> None:
    page, qc = browser_page, world.qc
    page.goto(served + "/queues")
    page.get_by_role("button", name="Pause", exact=True).click()
    page.get_by_text("Paused 1 queue(s).").wait_for()
    assert qc.queue_paused("default")
    page.get_by_role("button", name="Resume", exact=True).click()
    page.get_by_text("Resumed 1 queue(s).").wait_for()
    assert not qc.queue_paused("default")
    page.goto(served + "/recurring")
    page.get_by_role("button", name="Run now").click()
    page.get_by_text("Enqueued 1 run(s)").wait_for()
    assert qc.recurring_task_of(max(j.id for j in _ready(qc))) == "tick"
    page.get_by_role("button", name="Pause", exact=True).click()
    page.get_by_text("Paused 1 recurring task(s).").wait_for()
    assert qc.recurring_paused("tick")
    page.get_by_role("button", name="Resume", exact=True).click()
    page.get_by_text("Resumed 1 recurring task(s).").wait_for()
    assert not qc.recurring_paused("tick")
    assert page.problems == []


def test_lists_refresh_without_a_reload(world: World, served: str, browser_page: Any) -> None:
    page = browser_page
    page.goto(served + "/queues")
    world.classes["Fine"].set(queue="arrived-later").perform_later(world.qc, 9)
    page.get_by_role("link", name="arrived-later").wait_for(timeout=15_000)  # htmx polls every 5 s
    assert page.problems == []


def _ready(qc: Any) -> list[Any]:
    from quebec.store import listings

    return qc.db.read(listings.list_state, state=JobState.READY).jobs


def test_a_batch_page_and_the_sweep_button(world: World, served: str, browser_page: Any) -> None:
    page, qc = browser_page, world.qc
    with qc.batch(description="nightly <import>", on_finish=world.classes["Fine"].build(9), source="s3") as batch:
        member = world.classes["Fine"].perform_later(qc, 5).id
    page.goto(served + "/batches")
    page.locator(f"#batch-{batch.id}").get_by_role("link", name=f"#{batch.id}").click()
    page.get_by_text("nightly <import>").first.wait_for()
    assert '"source": "s3"' in page.inner_text("main")
    page.locator(f"#job-{member}").get_by_role("link").click()
    page.get_by_role("link", name=f"#{batch.id}").wait_for()
    page.goto(served + "/batches")
    page.get_by_role("button", name="Sweep stalled batches").click()
    page.get_by_text("Swept stalled batches: 0 repair(s) made.").wait_for()
    assert page.problems == []
