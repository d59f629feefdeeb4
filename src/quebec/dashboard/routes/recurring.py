"""Recurring tasks: last and next run; run now, pause and resume."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from quebec import recurring as tasks
from quebec.dashboard.core import BadRequest, Context, Form, action, done, view
from quebec.dashboard.render import Page, render


def recurring(page: Page, ctx: Context) -> Response:
    qc = ctx.quebec
    listed = tasks.listing(qc.db, qc.next_run_functions)
    return render(
        page,
        "recurring.html",
        listed=listed,
        pausable=qc.settings.recurring_pause,
        registered=set(qc.registry.names()),
        now=qc.db.clock.now(),
    )


def _key(form: Form) -> str:
    key = form.one("key")
    if not key:
        raise BadRequest("no recurring task named; the form lost its key field, reload the page")
    return key


def run_now(page: Page, ctx: Context, form: Form) -> Response:
    key = _key(form)
    if not ctx.quebec.run_recurring_now(key):
        raise BadRequest(f"there is no recurring task {key!r} (it may have been removed)", 404)
    return done(page, form, "/recurring", "ran", 1)


def pause(page: Page, ctx: Context, form: Form) -> Response:
    return done(page, form, "/recurring", "task_paused", int(ctx.quebec.pause_recurring(_key(form))))


def resume(page: Page, ctx: Context, form: Form) -> Response:
    return done(page, form, "/recurring", "task_resumed", int(ctx.quebec.resume_recurring(_key(form))))


routes = [
    Route("/recurring", view(recurring)),
    Route("/recurring/run", action(run_now), methods=["POST"]),
    Route("/recurring/pause", action(pause), methods=["POST"]),
    Route("/recurring/resume", action(resume), methods=["POST"]),
]
