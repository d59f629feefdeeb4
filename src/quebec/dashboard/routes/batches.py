"""Batches (docs/batches.md): the list (keyset pages, a status filter), one batch's page with
its metadata, callbacks and member jobs, and the sweep of stalled batches."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from quebec import ops
from quebec.batches import Batch
from quebec.dashboard.core import BadRequest, Context, Form, action, done, query_int, view
from quebec.dashboard.render import Page, render
from quebec.store.batch_listings import MEMBER_FILTERS, STATUSES

PAGE_SIZE = 50
MAX_ID = 2**63 - 1


def batch_list(page: Page, ctx: Context) -> Response:
    status = page.request.query_params.get("status", "").strip() or None
    if status is not None and status not in STATUSES:
        raise BadRequest(f"there is no batch status {status!r}; the statuses are {', '.join(STATUSES)}")
    before = query_int(page, "before", None, 1, MAX_ID)
    found = ops.list_batches(ctx.quebec.db, status=status, before=before, limit=PAGE_SIZE)
    return render(
        page,
        "batches.html",
        batches=[Batch(ctx.quebec, b, b.pending_jobs, b.live_failed_jobs) for b in found.batches],
        next_before=found.next_before,
        chosen=status,
        statuses=STATUSES,
        before=before,
        now=ctx.quebec.db.clock.now(),
    )


def batch(page: Page, ctx: Context) -> Response:
    raw = page.request.path_params["batch_id"]
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_ID:
        raise BadRequest(f"batch id {raw!r} is not a batch id (a whole number from 1)", 404)
    jobs_status = page.request.query_params.get("jobs", "").strip() or None
    if jobs_status is not None and jobs_status not in MEMBER_FILTERS:
        raise BadRequest(f"jobs={jobs_status!r} is not a filter of a batch's jobs; use {', '.join(MEMBER_FILTERS)}")
    before = query_int(page, "before", None, 1, MAX_ID)
    detail = ops.batch_detail(ctx.quebec.db, int(raw), before=before, limit=PAGE_SIZE, jobs_status=jobs_status)
    if detail is None:
        raise BadRequest(f"there is no batch {raw} (it may have been cleared by clear_finished_batches)", 404)
    b = detail.batch
    return render(
        page,
        "batch.html",
        b=Batch(ctx.quebec, b, b.pending_jobs, b.live_failed_jobs),
        d=detail,
        jobs_status=jobs_status,
        before=before,
        now=ctx.quebec.db.clock.now(),
    )


def sweep(page: Page, ctx: Context, form: Form) -> Response:
    """qc.sweep_stalled_batches() with its defaults; the notice counts every repair it made."""
    repaired = ctx.quebec.sweep_stalled_batches()
    return done(page, form, "/batches", "swept", sum(repaired.values()))


routes = [
    Route("/batches", view(batch_list)),
    Route("/batch/{batch_id}", view(batch)),
    Route("/batches/sweep", action(sweep), methods=["POST"]),
]
