"""Jinja2 rendering: one environment with autoescape always on, the page helpers, and a
page or only its live block (for htmx's polling requests)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

from quebec.dashboard.security import Visitor

TEMPLATES = Path(__file__).parent / "templates"
POLL_SECONDS = 5

# The notices an action may report back (?done=<code>&n=<count>): fixed phrases, so no text
# from the URL is ever shown.
NOTICES = {
    "retried": "Retried {n} failed job(s).",
    "discarded": "Discarded {n} failed job(s).",
    "unblocked": "Unblocked {n} job(s).",
    "cancelled": "Cancelled {n} job(s).",
    "paused": "Paused {n} queue(s).",
    "resumed": "Resumed {n} queue(s).",
    "ran": "Enqueued {n} run(s) of the recurring task.",
    "task_paused": "Paused {n} recurring task(s).",
    "task_resumed": "Resumed {n} recurring task(s).",
    "swept": "Swept stalled batches: {n} repair(s) made.",
}

env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined)


def age(moment: datetime | None, now: datetime) -> str:
    """How long ago (or, for a future moment, how long until), in the largest whole unit."""
    if moment is None:
        return "—"
    seconds = (now - moment).total_seconds()
    ahead = seconds < 0
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            text = f"{int(seconds // size)}{unit}"
            break
    else:
        text = f"{seconds:.0f}s" if seconds >= 1 else f"{seconds * 1000:.0f}ms"
    return f"in {text}" if ahead else f"{text} ago"


def stamp(moment: datetime | None) -> str:
    return "—" if moment is None else f"{moment:%Y-%m-%d %H:%M:%S}"


def pretty_json(text: str | None) -> str:
    if text is None:
        return ""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def job_arguments(text: str | None) -> str:
    """The job's own arguments out of the stored envelope, as compact JSON (sealed: as stored)."""
    try:
        envelope = json.loads(text or "null")
        inner = envelope["arguments"]["arguments"]
    except (ValueError, KeyError, TypeError):
        return text or ""
    return json.dumps(inner, ensure_ascii=False)[:300]


env.filters.update(stamp=stamp, pretty_json=pretty_json, job_arguments=job_arguments)
env.globals.update(age=age, POLL_SECONDS=POLL_SECONDS)


class Page:
    """What every template gets: the request, the visitor, links under root_path, a CSRF token."""

    def __init__(self, request: Request, visitor: Visitor, token: str, read_only: bool) -> None:
        self.request = request
        self.visitor = visitor
        self.token = token
        self.read_only = read_only
        self.base = str(request.scope.get("root_path", "")).rstrip("/")

    def url(self, path: str, **query: Any) -> str:
        from urllib.parse import urlencode

        given = {k: v for k, v in query.items() if v not in (None, "")}
        return self.base + path + (("?" + urlencode(given)) if given else "")

    @property
    def here(self) -> str:
        """This page's path and query under root_path (the `back` of its forms)."""
        query = self.request.url.query
        return self.base + self.request.url.path.removeprefix(self.base) + (f"?{query}" if query else "")

    @property
    def notice(self) -> str | None:
        code = self.request.query_params.get("done")
        if code not in NOTICES:
            return None
        count = self.request.query_params.get("n", "0")
        return NOTICES[code].format(n=int(count) if count.isdigit() else 0)


class Macros:
    """The HTML snippets every page repeats, built with escaping (markupsafe)."""

    def __init__(self, page: Page) -> None:
        self.page = page

    def poll(self) -> Markup:
        """The attributes of a live block: htmx fetches this page's block again every few seconds."""
        return Markup('id="live" hx-get="{}" hx-trigger="every {}s" hx-swap="outerHTML"').format(
            self.page.here, POLL_SECONDS
        )

    def form_fields(self) -> Markup:
        return Markup(
            '<input type="hidden" name="csrf" value="{}"><input type="hidden" name="back" value="{}">'
        ).format(self.page.token, self.page.here)

    def button(self, path: str, label: str, name: str | None = None, value: Any = None, cls: str = "") -> Markup:
        """A one-button POST form for an operator (nothing for a viewer)."""
        if not self.page.visitor.may_act:
            return Markup("")
        field = Markup('<input type="hidden" name="{}" value="{}">').format(name, value) if name else Markup("")
        return Markup(
            '<form class="inline" method="post" action="{}">{}{}<button type="submit" class="{}">{}</button></form>'
        ).format(self.page.url(path), self.form_fields(), field, cls, label)

    def when(self, moment: datetime | None, now: datetime) -> Markup:
        return Markup('<time datetime="{}" title="{} UTC">{}</time>').format(
            stamp(moment), stamp(moment), age(moment, now)
        )


def render(page: Page, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    template = env.get_template(name)
    values = {"page": page, "m": Macros(page), **context}
    if page.request.headers.get("hx-request") and "live" in template.blocks:
        body = "".join(template.blocks["live"](template.new_context(values)))
    else:
        body = template.render(values)
    return HTMLResponse(body, status_code=status)
