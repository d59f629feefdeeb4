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


def run_now(page: Page, ctx: Context, form: Form) -> Response:
    key = form.required("key", "recurring task")
    if not ctx.quebec.run_recurring_now(key):
        raise BadRequest(f"there is no recurring task {key!r} (it may have been removed)", 404)
    return done(page, form, "/recurring", "ran", 1)


def pause(page: Page, ctx: Context, form: Form) -> Response:
    changed = ctx.quebec.pause_recurring(form.required("key", "recurring task"))
    return done(page, form, "/recurring", "task_paused", int(changed))


def resume(page: Page, ctx: Context, form: Form) -> Response:
    changed = ctx.quebec.resume_recurring(form.required("key", "recurring task"))
    return done(page, form, "/recurring", "task_resumed", int(changed))


routes = [
    Route("/recurring", view(recurring)),
    Route("/recurring/run", action(run_now), methods=["POST"]),
    Route("/recurring/pause", action(pause), methods=["POST"]),
    Route("/recurring/resume", action(resume), methods=["POST"]),
]
