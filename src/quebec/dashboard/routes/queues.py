"""The queues page: size, latency of the oldest ready job, paused; pause and resume."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from quebec.dashboard.core import Context, Form, action, done, view
from quebec.dashboard.render import Page, render
from quebec.store.queue_list import queue_list


def queues(page: Page, ctx: Context) -> Response:
    return render(page, "queues.html", data=ctx.quebec.db.read(queue_list))


def pause(page: Page, ctx: Context, form: Form) -> Response:
    return done(page, form, "/queues", "paused", int(ctx.quebec.pause_queue(form.required("queue", "queue"))))


def resume(page: Page, ctx: Context, form: Form) -> Response:
    return done(page, form, "/queues", "resumed", int(ctx.quebec.resume_queue(form.required("queue", "queue"))))


def pause_all(page: Page, ctx: Context, form: Form) -> Response:
    return done(page, form, "/queues", "paused", ctx.quebec.pause_all())


def resume_all(page: Page, ctx: Context, form: Form) -> Response:
    return done(page, form, "/queues", "resumed", ctx.quebec.resume_all())


routes = [
    Route("/queues", view(queues)),
    Route("/queues/pause", action(pause), methods=["POST"]),
    Route("/queues/resume", action(resume), methods=["POST"]),
    Route("/queues/pause-all", action(pause_all), methods=["POST"]),
    Route("/queues/resume-all", action(resume_all), methods=["POST"]),
]
