"""The batches pages: the list, one batch, a job's batch, the sweep action, on every backend."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from dashboard_support import XSS_ARG, World, act, client_fixture, client_for, world_fixture  # noqa: F401
from sqlalchemy import update

import quebec
from conftest import drain_all
from quebec.dashboard.routes import batches as batch_routes
from quebec.dashboard.security import Role, Visitor
from quebec.store import batches
from quebec.store.batch_listings import batch_of_job, list_batches

XSS_DESC = "<script>alert('desc')</script>"


class Step(quebec.BaseClass):
    def perform(self, how: str = "ok") -> None:
        if how == "fail":
            raise ValueError("step failed")


class Report(quebec.BaseClass):
    def perform(self, role: str) -> None:
        pass


def _finished_batch(qc: Any) -> tuple[Any, list[int]]:
    """A batch whose one member failed: on_failure and on_finish enqueued, then run."""
    qc.register_job(Step)
    qc.register_job(Report)
    with qc.batch(
        description=XSS_DESC,
        on_success=Report.build("success"),
        on_failure=Report.build("failure"),
        on_finish=Report.build(XSS_ARG),
        metadata={"note": XSS_ARG},
    ) as batch:
        ids = [Step.perform_later(qc, "ok").id, Step.perform_later(qc, "fail").id]
    drain_all(qc)
    return batch.reload(), ids


def test_list_shows_batches_newest_first_with_progress_escaped(world: World, client: Any) -> None:
    qc = world.qc
    done, _ = _finished_batch(qc)
    with qc.batch(description="open one") as running:
        Step.perform_later(qc, "ok")
    text = client.get("/batches").text
    assert text.index(f'id="batch-{running.id}"') < text.index(f'id="batch-{done.id}"')
    assert XSS_DESC not in text and "&lt;script&gt;alert(&#39;desc&#39;)&lt;/script&gt;" in text
    row = text[text.index(f'id="batch-{done.id}"') :].split("</tr>")[0]
    assert "failed" in row and "100.0%" in row
    row = text[text.index(f'id="batch-{running.id}"') :].split("</tr>")[0]
    assert "enqueued" in row and "0.0%" in row
    assert 'href="/batches"' in client.get("/").text  # the nav entry
    only_failed = client.get("/batches", params={"status": "failed"}).text
    assert f'id="batch-{done.id}"' in only_failed and f'id="batch-{running.id}"' not in only_failed
    assert client.get("/batches", params={"status": "nope"}).status_code == 400


def test_list_pages_by_id(world: World, client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    qc = world.qc
    made = []
    for n in range(3):
        with qc.batch(description=f"b{n}") as b:
            pass
        made.append(b.id)
    page = qc.db.read(list_batches, limit=2)
    assert [b.id for b in page.batches] == made[:0:-1] and page.next_before == made[1]
    monkeypatch.setattr(batch_routes, "PAGE_SIZE", 2)
    first = client.get("/batches", params={"status": "completed"}).text
    assert f'href="/batches?status=completed&amp;before={made[1]}"' in first and f'id="batch-{made[0]}"' not in first
    text = client.get("/batches", params={"before": made[1]}).text
    assert f'id="batch-{made[0]}"' in text and f'id="batch-{made[2]}"' not in text


def test_batch_page_shows_metadata_callbacks_and_members(world: World, client: Any) -> None:
    qc = world.qc
    batch, ids = _finished_batch(qc)
    response = client.get(f"/batch/{batch.id}")
    assert response.status_code == 200
    text = response.text
    assert XSS_DESC not in text and XSS_ARG not in text and "&lt;script&gt;" in text
    for job_id in ids:
        assert f'href="/job/{job_id}"' in text
    # on_failure and on_finish ran as jobs, linked; on_success was not enqueued.
    links = {
        role: re.search(rf'id="callback-{role}".*?</tr>', text, re.S)
        for role in ("on_success", "on_failure", "on_finish")
    }
    assert links["on_success"] and "not enqueued" in links["on_success"].group(0)
    for role in ("on_failure", "on_finish"):
        found = links[role]
        assert found and re.search(r'href="/job/(\d+)"', found.group(0)), role
        callback_id = int(re.search(r'href="/job/(\d+)"', found.group(0)).group(1))  # type: ignore[union-attr]
        job_page = client.get(f"/job/{callback_id}").text
        assert "Callback of batch" in job_page and f'href="/batch/{batch.id}"' in job_page
    assert f'href="/batch/{batch.id}?jobs=failed"' in text and f'href="/batch/{batch.id}?jobs=pending"' not in text
    failed_only = client.get(f"/batch/{batch.id}", params={"jobs": "failed"}).text
    assert f'id="job-{ids[1]}"' in failed_only and f'id="job-{ids[0]}"' not in failed_only
    completed = client.get(f"/batch/{batch.id}", params={"jobs": "completed"}).text
    assert f'id="job-{ids[0]}"' in completed and f'id="job-{ids[1]}"' not in completed
    assert client.get(f"/batch/{batch.id}", params={"jobs": "lost"}).status_code == 400
    member_page = client.get(f"/job/{ids[1]}").text
    assert f'href="/batch/{batch.id}"' in member_page and "Callback of batch" not in member_page
    assert 'href="/batch/' not in client.get(f"/job/{world.ready}").text
    assert client.get("/batch/999999").status_code == 404
    assert client.get("/batch/x").status_code == 404


def test_a_cleared_batch_is_named_on_its_jobs_page(world: World, client: Any) -> None:
    qc = world.qc
    qc.register_job(Step)
    with qc.batch() as b:
        job_id = Step.perform_later(qc, "ok").id
    drain_all(qc)
    assert qc.clear_finished_batches(finished_before=qc.db.clock.now() + timedelta(seconds=5)) == 1
    assert qc.db.read(batch_of_job, job_id=job_id).exists is False
    assert f"#{b.id} (cleared)" in client.get(f"/job/{job_id}").text


def _stalled(qc: Any, engine: Any) -> int:
    """A batch created 10 minutes ago that nothing started (its creator died in the block)."""
    batch_id = qc.db.transact(batches.create, batches.NewBatch(active_job_batch_id=str(uuid.uuid4())))
    t = qc.db.tables.batches
    with engine.begin() as conn:
        conn.execute(update(t).where(t.c.id == batch_id).values(created_at=qc.db.clock.now() - timedelta(minutes=10)))
    return int(batch_id)


def test_sweep_starts_a_stalled_batch(world: World, client: Any, engine: Any) -> None:
    qc = world.qc
    batch_id = _stalled(qc, engine)
    assert "pending" in client.get("/batches", params={"status": "pending"}).text
    response = act(client, "/batches/sweep", {"back": "/batches"}, page="/batches")
    assert response.status_code == 303 and response.headers["location"] == "/batches?done=swept&n=2"
    assert qc.find_batch(batch_id).status == "completed"  # started, and empty: finished at once
    assert "Swept stalled batches: 2 repair(s) made." in client.get(response.headers["location"]).text


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sweep_refused_without_a_valid_token_or_for_a_viewer(world: World, client: Any, engine: Any) -> None:
    qc = world.qc
    batch_id = _stalled(qc, engine)
    assert act(client, "/batches/sweep", {}, page="/batches", token="forged").status_code == 403
    headers = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    assert act(client, "/batches/sweep", {}, page="/batches", headers=headers).status_code == 403
    app = qc.asgi_app(read_only=True)
    with client_for(app) as viewer:
        assert 'action="/batches/sweep"' not in viewer.get("/batches").text
        token = app.access.csrf_token(Visitor(Role.VIEWER, ""))  # even with a valid token
        refused = act(viewer, "/batches/sweep", {}, token=token)
        assert refused.status_code == 403 and "read-only" in refused.text
    assert qc.find_batch(batch_id).status == "pending"


def test_an_open_batch_shows_its_live_counts_as_quebec_batch_does(world: World, client: Any) -> None:
    qc = world.qc
    qc.register_job(Step)
    drain_all(qc)  # the world's ready jobs first: then only the batch's are ready
    with qc.batch(description="half way") as batch:
        for how in ("ok", "fail", "ok"):
            Step.perform_later(qc, how)
    for _ in range(2):
        qc.drain_batch(1)[0].perform()
    batch.reload()
    assert (batch.status, batch.completed_jobs, batch.failed_jobs, batch.pending_jobs) == ("enqueued", 1, 1, 1)
    [listed] = qc.db.read(list_batches, status="enqueued").batches
    assert (listed.pending_jobs, listed.live_failed_jobs) == (1, 1)
    row = client.get("/batches").text.split(f'id="batch-{batch.id}"')[1].split("</tr>")[0]
    cells = [c for c in re.findall(r'<td class="num">(\d+)</td>', row)]
    assert cells == ["1", "1", "3"] and f"{batch.progress_percentage}%" in row and "66.67%" in row
    page = client.get(f"/batch/{batch.id}").text
    assert "1 pending</a>" in page and f'href="/batch/{batch.id}?jobs=pending"' in page
