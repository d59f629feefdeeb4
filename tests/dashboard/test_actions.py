"""Every action, as the page posts it, changes the database, on every backend."""

from __future__ import annotations

from typing import Any

from dashboard_support import World, act, client_fixture, world_fixture  # noqa: F401 - fixtures

from quebec.store import listings
from quebec.types import JobState


def state(world: World, job_id: int) -> JobState | None:
    row = world.qc.get_job(job_id)
    return None if row is None else row.state


def test_retry_one_failed_job_and_report_it(world: World, client: Any) -> None:
    response = act(client, "/failed/retry", {"id": world.failed[0], "back": "/jobs/failed"}, page="/jobs/failed")
    assert response.status_code == 303 and response.headers["location"] == "/jobs/failed?done=retried&n=1"
    assert state(world, world.failed[0]) is JobState.READY
    assert state(world, world.failed[1]) is JobState.FAILED
    assert "Retried 1 failed job(s)." in client.get(response.headers["location"]).text


def test_discard_selected_failed_jobs(world: World, client: Any) -> None:
    response = act(client, "/failed/discard", {"selected": world.failed}, page="/jobs/failed")
    assert response.status_code == 303
    assert all(state(world, i) is JobState.FINISHED for i in world.failed)
    assert world.qc.get_job(world.failed[0]).status.value == "discarded"


def test_retry_all_matching_the_filter_only(world: World, client: Any) -> None:
    response = act(client, "/failed/retry-all", {"args": "second", "queue": "", "class": "", "error": ""})
    assert response.status_code == 303 and "n=1" in response.headers["location"]
    assert state(world, world.failed[1]) is JobState.READY and state(world, world.failed[0]) is JobState.FAILED


def test_discard_all_failed(world: World, client: Any) -> None:
    response = act(client, "/failed/discard-all", {"error": "boom"})
    assert "n=2" in response.headers["location"]
    assert all(state(world, i) is JobState.FINISHED for i in world.failed)


def test_unblock_and_cancel_blocked(world: World, client: Any) -> None:
    act(client, "/blocked/unblock", {"id": world.blocked}, page="/jobs/blocked")
    assert state(world, world.blocked) is JobState.READY
    limited = world.qc.get_job(world.limited_ready)
    sibling = world.qc.registry.get(limited.class_name).perform_later(world.qc, 3).id
    assert state(world, sibling) is JobState.BLOCKED
    response = act(client, "/blocked/cancel", {"id": sibling}, page="/jobs/blocked")
    assert response.status_code == 303 and state(world, sibling) is not JobState.BLOCKED


def test_unblock_all_of_a_queue(world: World, client: Any) -> None:
    response = act(client, "/blocked/unblock-all", {"queue": "elsewhere", "class": ""}, page="/jobs/blocked")
    assert "n=0" in response.headers["location"] and state(world, world.blocked) is JobState.BLOCKED
    response = act(client, "/blocked/unblock-all", {"queue": "default", "class": ""}, page="/jobs/blocked")
    assert "n=1" in response.headers["location"] and state(world, world.blocked) is JobState.READY


def test_cancel_scheduled(world: World, client: Any) -> None:
    act(client, "/scheduled/cancel", {"selected": [world.scheduled]}, page="/jobs/scheduled")
    assert state(world, world.scheduled) is not JobState.SCHEDULED


def test_pause_and_resume_a_queue_and_all(world: World, client: Any) -> None:
    act(client, "/queues/pause", {"queue": "default"}, page="/queues")
    assert world.qc.queue_paused("default")
    assert "paused" in client.get("/queues").text
    act(client, "/queues/resume", {"queue": "default"}, page="/queues")
    assert not world.qc.queue_paused("default")
    act(client, "/queues/pause-all", {}, page="/queues")
    assert world.qc.paused_queues() == ["default"]
    act(client, "/queues/resume-all", {}, page="/queues")
    assert world.qc.paused_queues() == []


def test_run_recurring_now_and_pause_resume_it(world: World, client: Any) -> None:
    before = len(world.qc.db.read(listings.list_state, state=JobState.READY).jobs)
    response = act(client, "/recurring/run", {"key": "tick"}, page="/recurring")
    assert response.status_code == 303 and "done=ran" in response.headers["location"]
    after = world.qc.db.read(listings.list_state, state=JobState.READY).jobs
    assert len(after) == before + 1 and world.qc.recurring_task_of(after[0].id) == "tick"
    act(client, "/recurring/pause", {"key": "tick"}, page="/recurring")
    assert world.qc.recurring_paused("tick")
    act(client, "/recurring/resume", {"key": "tick"}, page="/recurring")
    assert not world.qc.recurring_paused("tick")


def test_an_action_that_cannot_apply_says_why(world: World, client: Any) -> None:
    missing = act(client, "/recurring/run", {"key": "nope"}, page="/recurring")
    assert missing.status_code == 404 and "there is no recurring task" in missing.text
    nothing = act(client, "/failed/retry", {}, page="/jobs/failed")
    assert nothing.status_code == 400 and "no job was selected" in nothing.text
    bad = act(client, "/failed/retry", {"id": "x1"}, page="/jobs/failed")
    assert bad.status_code == 400 and "whole numbers" in bad.text


def test_back_to_another_site_is_not_followed(world: World, client: Any) -> None:
    response = act(client, "/queues/pause", {"queue": "default", "back": "https://evil.example/x"}, page="/queues")
    assert response.headers["location"].startswith("/queues?")
    response = act(client, "/queues/resume", {"queue": "default", "back": "//evil.example/x"}, page="/queues")
    assert response.headers["location"].startswith("/queues?")
