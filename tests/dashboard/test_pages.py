"""Every page answers with what the database holds, on every backend."""

from __future__ import annotations

from typing import Any

import pytest
from dashboard_support import World, client_fixture, world_fixture  # noqa: F401 - fixtures

import quebec
from quebec.store import job_detail, overview
from quebec.types import JobState

PAGES = [
    "/",
    "/queues",
    "/jobs/ready",
    "/jobs/scheduled",
    "/jobs/blocked",
    "/jobs/in-progress",
    "/jobs/failed",
    "/jobs/finished",
    "/recurring",
    "/processes",
    "/keys",
    "/batches",
]


def test_every_page_renders_with_security_headers(world: World, client: Any) -> None:
    for path in [*PAGES, f"/job/{world.failed[0]}"]:
        response = client.get(path)
        assert response.status_code == 200, (path, response.text[:500])
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert response.headers["x-frame-options"] == "DENY"


def test_overview_counts_each_state(world: World, client: Any) -> None:
    text = client.get("/").text
    counts = world.qc.db.read(overview.state_counts).counts
    assert counts[JobState.FAILED] == 2 and counts[JobState.BLOCKED] == 1 and counts[JobState.SCHEDULED] == 1
    assert counts[JobState.READY] == 2 and counts[JobState.FINISHED] == 1
    assert "<svg" in text and "polyline" in text
    assert "2 failed" in text  # the last 24 h, from the failure buckets


def test_lists_show_the_jobs_of_their_state_only(world: World, client: Any) -> None:
    expect = {
        "failed": set(world.failed),
        "ready": {world.ready, world.limited_ready},
        "scheduled": {world.scheduled},
        "blocked": {world.blocked},
        "finished": {world.finished},
    }
    every = {i for ids in expect.values() for i in ids}
    for slug, ids in expect.items():
        text = client.get(f"/jobs/{slug}").text
        shown = {i for i in every if f'id="job-{i}"' in text}
        assert shown == ids, slug


def test_filters_by_class_argument_and_error_text(world: World, client: Any) -> None:
    text = client.get("/jobs/failed", params={"args": "second"}).text
    assert f'id="job-{world.failed[1]}"' in text and f'id="job-{world.failed[0]}"' not in text
    text = client.get("/jobs/failed", params={"error": "boom", "class": world.classes["Boom"].__qualname__}).text
    assert all(f'id="job-{i}"' in text for i in world.failed)
    text = client.get("/jobs/failed", params={"error": "no such error"}).text
    assert "No failed jobs match these filters" in text
    text = client.get("/jobs/ready", params={"queue": "nope"}).text
    assert "No ready jobs match" in text
    bad = client.get("/jobs/ready", params={"error": "x"})
    assert bad.status_code == 400 and "the error filter applies to failed jobs only" in bad.text


def test_keyset_pages_walk_every_failed_job_once(world: World, client: Any) -> None:
    extra = [world.classes["Boom"].perform_later(world.qc, f"n{i}").id for i in range(55)]
    while any(world.qc.get_job(i).state is JobState.READY for i in extra):
        world.qc.drain_one().perform()
    expected = [i for i in [*world.failed, *extra] if world.qc.get_job(i).state is JobState.FAILED]
    assert len(expected) == 57
    seen: list[int] = []
    params: dict[str, Any] = {}
    for _ in range(5):
        text = client.get("/jobs/failed", params=params).text
        seen += [i for i in [*world.failed, *extra] if f'id="job-{i}"' in text]
        if 'rel="next"' not in text:
            break
        params = {"before": text.split("before=")[1].split('"')[0].split("&")[0]}
    assert sorted(seen) == sorted(expected)


def test_job_page_shows_error_backtrace_timeline_and_retry_chain(world: World, client: Any) -> None:
    qc = world.qc

    @qc.register_job
    class Flaky(quebec.BaseClass):
        retry_on = [quebec.RetryStrategy((ConnectionError,), wait=0, attempts=2)]

        def perform(self) -> None:
            raise ConnectionError("flaky <b>link</b>")

    first = Flaky.perform_later(qc).id
    for _ in range(10):  # Fine and Limited jobs are performed on the way
        detail = qc.db.read(job_detail.job_detail, job_id=first)
        if detail.chain[-1].state is JobState.FAILED:
            break
        qc.drain_one().perform()
    assert len(detail.chain) == 2 and detail.chain[-1].state is JobState.FAILED
    retried = qc.db.read(job_detail.job_detail, job_id=detail.chain[-1].id)
    assert [a.id for a in retried.chain] == [a.id for a in detail.chain]  # found from the last attempt too
    alone = qc.db.read(job_detail.job_detail, job_id=world.failed[1])  # failed once, never retried
    assert [a.id for a in alone.chain] == [world.failed[1]]
    last = detail.chain[-1].id
    text = client.get(f"/job/{last}").text
    assert "ConnectionError" in text and "flaky &lt;b&gt;link&lt;/b&gt;" in text
    assert "Timeline" in text and "enqueued" in text
    assert "Attempts (same active job id)" in text and f'href="/job/{first}"' in text


def test_unknown_job_and_list_are_404_in_one_sentence(world: World, client: Any) -> None:
    assert client.get("/job/99999999").status_code == 404
    missing = client.get("/jobs/lost")
    assert missing.status_code == 404 and "the lists are scheduled, ready" in missing.text


def test_queues_recurring_processes_keys(world: World, client: Any) -> None:
    assert ">default<" in client.get("/queues").text
    recurring = client.get("/recurring").text
    assert "tick" in recurring and "every hour" in recurring and "Run now" in recurring
    processes = client.get("/processes").text
    assert "dash-test" in processes and "4242" in processes and "alive" in processes
    keys = client.get("/keys").text
    assert "Limited/shared" in keys or "shared" in keys


def test_health_json(world: World, client: Any) -> None:
    body = client.get("/health").json()
    assert body["status"] == "healthy"
    assert body["jobs"] == {"ready": 2, "in_progress": 0, "scheduled": 1, "blocked": 1, "failed": 2}
    workers = body["processes"]["Worker"]
    assert workers["alive"] == workers["total"] >= 1
    assert body["latency"]["pending_seconds"] >= 0


def test_live_fragment_is_the_block_only(world: World, client: Any) -> None:
    text = client.get("/queues", headers={"HX-Request": "true"}).text
    assert text.startswith('<div id="live"') and "<html" not in text
    # where rows are ticked, only the count refreshes
    text = client.get("/jobs/failed", headers={"HX-Request": "true"}).text
    assert text.startswith('<div id="live"') and "2 in all" in text and 'id="job-' not in text


@pytest.mark.parametrize("hours", ["0", "abc", "9999"])
def test_bad_window_is_400(world: World, client: Any, hours: str) -> None:
    response = client.get("/", params={"hours": hours})
    assert response.status_code == 400 and "hours=" in response.text


def test_counts_of_big_tables_are_estimated_and_marked(
    world: World, client: Any, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite keeps no row estimate: it counts exactly")
    t = world.qc.db.tables
    with world.qc.db.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in (t.jobs, t.failed_executions):
            conn.exec_driver_sql(("ANALYZE TABLE " if backend == "mysql" else "ANALYZE ") + table.name)
    monkeypatch.setattr(overview, "ESTIMATE_ABOVE", 0)  # as if these tables held millions
    counts = world.qc.db.read(overview.state_counts)
    assert JobState.FINISHED in counts.estimated and JobState.FAILED in counts.estimated
    text = client.get("/").text
    assert text.count('title="estimated from the planner') >= 2


def test_processes_show_the_supervisor_tree(world: World, client: Any) -> None:
    from quebec.store import processes
    from quebec.types import ProcessInfo

    qc = world.qc
    boss = qc.db.transact(processes.register, info=ProcessInfo(kind="Supervisor", name="boss", pid=10, hostname="h"))
    qc.db.transact(
        processes.register,
        info=ProcessInfo(kind="Worker", name="child-of-boss", pid=11, hostname="h", supervisor_id=boss),
    )
    text = client.get("/processes").text
    boss_at, child_at = text.index("boss</td>"), text.index("child-of-boss")
    assert boss_at < child_at and '<tr class="depth-1">' in text[boss_at : child_at + 200]
