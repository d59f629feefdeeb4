"""Jobs by state (keyset pages, filters), one job's page, and the actions on jobs."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from quebec.dashboard.core import BadRequest, Context, Form, action, done, query_int, view
from quebec.dashboard.render import Page, render
from quebec.dashboard.routes.overview import STATES
from quebec.store import batch_listings, job_detail, listings, overview
from quebec.store.listings import ListFilter

PAGE_SIZE = 50
_BY_SLUG = {slug: (state, label) for state, slug, label in STATES}
_FILTERS = (("queue", "queue_name"), ("class", "class_name"), ("args", "argument_text"), ("error", "error_text"))
_TEXT_MAX = 200
_AT_LABEL = {
    "ready": "Ready since",
    "scheduled": "Scheduled for",
    "blocked": "Blocked until",
    "in-progress": "Started",
    "failed": "Failed",
    "finished": "Finished",
}


def list_filter(values: dict[str, str], *, failed: bool) -> ListFilter:
    given = {}
    for field, attribute in _FILTERS:
        value = (values.get(field) or "").strip()
        if len(value) > _TEXT_MAX:
            raise BadRequest(f"the {field} filter is {len(value)} characters long; keep it under {_TEXT_MAX}")
        if value and field == "error" and not failed:
            raise BadRequest("the error filter applies to failed jobs only; remove it or open the failed jobs")
        given[attribute] = value or None
    return ListFilter(**given)


def job_list(page: Page, ctx: Context) -> Response:
    slug = page.request.path_params["state"]
    if slug not in _BY_SLUG:
        raise BadRequest(f"there is no job list {slug!r}; the lists are {', '.join(_BY_SLUG)}", 404)
    state, label = _BY_SLUG[slug]
    where = list_filter(dict(page.request.query_params), failed=slug == "failed")
    before = query_int(page, "before", None, 1, 2**63 - 1)
    found = ctx.quebec.db.read(listings.list_state, state=state, where=where, before=before, limit=PAGE_SIZE)
    selectable = slug in ("failed", "blocked", "scheduled") and page.visitor.may_act
    return render(
        page,
        "jobs.html",
        slug=slug,
        label=label,
        selectable=selectable,
        state=state,
        # Where the rows are ticked for an action they do not refresh; the count does.
        counts=ctx.quebec.db.read(overview.state_counts) if selectable else None,
        at_label=_AT_LABEL[slug],
        found=found,
        where=where,
        filters={f: page.request.query_params.get(f, "") for f, _ in _FILTERS},
        classes=sorted(ctx.quebec.registry.names()),
        now=ctx.quebec.db.clock.now(),
        before=before,
    )


def job(page: Page, ctx: Context) -> Response:
    raw = page.request.path_params["job_id"]
    if not raw.isdigit() or not 1 <= int(raw) <= 2**63 - 1:
        raise BadRequest(f"job id {raw!r} is not a job id (a whole number from 1)", 404)
    detail = ctx.quebec.db.read(job_detail.job_detail, job_id=int(raw))
    if detail is None:
        raise BadRequest(f"there is no job {raw} (it may have been cleared or cancelled)", 404)
    batch = ctx.quebec.db.read(batch_listings.batch_of_job, job_id=int(raw))
    return render(page, "job.html", d=detail, batch=batch, now=ctx.quebec.db.clock.now())


# -- actions -------------------------------------------------------------------------------------
def retry(page: Page, ctx: Context, form: Form) -> Response:
    return done(page, form, "/jobs/failed", "retried", ctx.quebec.retry_failed_jobs(form.ids()))


def discard(page: Page, ctx: Context, form: Form) -> Response:
    return done(page, form, "/jobs/failed", "discarded", ctx.quebec.discard_failed_jobs(form.ids()))


def _matching(form: Form) -> ListFilter:
    return list_filter({f: form.one(f) for f, _ in _FILTERS}, failed=True)


def retry_all(page: Page, ctx: Context, form: Form) -> Response:
    return done(page, form, "/jobs/failed", "retried", ctx.quebec.retry_failed_matching(_matching(form)))


def discard_all(page: Page, ctx: Context, form: Form) -> Response:
    return done(page, form, "/jobs/failed", "discarded", ctx.quebec.discard_failed_matching(_matching(form)))


def unblock(page: Page, ctx: Context, form: Form) -> Response:
    return done(page, form, "/jobs/blocked", "unblocked", ctx.quebec.unblock_jobs(form.ids()))


def unblock_all(page: Page, ctx: Context, form: Form) -> Response:
    """Every blocked job (of the list's queue and class, when filtered), past its limit."""
    moved = ctx.quebec.unblock_all(class_name=form.one("class") or None, queue_name=form.one("queue") or None)
    return done(page, form, "/jobs/blocked", "unblocked", moved)


def cancel_blocked(page: Page, ctx: Context, form: Form) -> Response:
    return done(page, form, "/jobs/blocked", "cancelled", ctx.quebec.cancel_blocked_jobs(form.ids()))


def cancel_scheduled(page: Page, ctx: Context, form: Form) -> Response:
    return done(page, form, "/jobs/scheduled", "cancelled", ctx.quebec.cancel_scheduled_jobs(form.ids()))


routes = [
    Route("/jobs/{state}", view(job_list)),
    Route("/job/{job_id}", view(job)),
    Route("/failed/retry", action(retry), methods=["POST"]),
    Route("/failed/discard", action(discard), methods=["POST"]),
    Route("/failed/retry-all", action(retry_all), methods=["POST"]),
    Route("/failed/discard-all", action(discard_all), methods=["POST"]),
    Route("/blocked/unblock", action(unblock), methods=["POST"]),
    Route("/blocked/unblock-all", action(unblock_all), methods=["POST"]),
    Route("/blocked/cancel", action(cancel_blocked), methods=["POST"]),
    Route("/scheduled/cancel", action(cancel_scheduled), methods=["POST"]),
]
