"""What every route shares: who is asking (security.Access), the page helpers, form parsing,
the CSRF check on actions, and turning an operation's error into a page."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from quebec.dashboard.render import Page, render
from quebec.dashboard.security import Access, Refusal, Visitor, same_origin
from quebec.errors import QuebecError

if TYPE_CHECKING:
    from quebec.app import Quebec

log = logging.getLogger("quebec.dashboard")
FORM_MAX_BYTES = 256 * 1024
Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Context:
    quebec: Quebec
    access: Access


class BadRequest(Exception):
    """A request the page cannot answer; its message is the one sentence shown, with `status`."""

    def __init__(self, sentence: str, status: int = 400) -> None:
        super().__init__(sentence)
        self.status = status


class Form:
    def __init__(self, fields: dict[str, list[str]]) -> None:
        self.fields = fields

    def one(self, name: str) -> str:
        values = self.fields.get(name) or [""]
        return values[0].strip()

    def required(self, name: str, what: str) -> str:
        value = self.one(name)
        if not value:
            raise BadRequest(f"no {what} named; the form lost its {name} field, reload the page")
        return value

    def ids(self) -> list[int]:
        """The row's own button (`id`) if pressed, else the ticked rows (`selected`)."""
        raw = self.fields.get("id") or self.fields.get("selected") or []
        if not raw:
            raise BadRequest("no job was selected; tick at least one row, or use a row's own button")
        try:
            ids = [int(v) for v in raw]
        except ValueError:
            raise BadRequest(f"job ids are whole numbers, not {raw!r}") from None
        if any(i < 1 for i in ids):
            raise BadRequest(f"job ids are 1 or more, not {ids!r}")
        return ids


def visitor_of(request: Request) -> tuple[Context, Visitor | Refusal]:
    ctx: Context = request.app.state.cp
    client = request.client.host if request.client else None
    return ctx, ctx.access.visitor(request.headers, client, request)


def refused(request: Request, refusal: Refusal) -> Response:
    headers = {"WWW-Authenticate": 'Basic realm="Quebec", charset="UTF-8"'} if refusal.status == 401 else {}
    return PlainTextResponse(f"Refused: {refusal.sentence}.", status_code=refusal.status, headers=headers)


def page_of(request: Request, ctx: Context, visitor: Visitor) -> Page:
    return Page(request, visitor, ctx.access.csrf_token(visitor), ctx.access.read_only)


def error_page(page: Page, error: BadRequest) -> HTMLResponse:
    return render(page, "error.html", status=error.status, message=str(error))


def view(fn: Callable[[Page, Context], Response]) -> Endpoint:
    """A GET page: any signed-in visitor; `fn` runs in a worker thread (the store is blocking)."""

    async def endpoint(request: Request) -> Response:
        ctx, who = visitor_of(request)
        if isinstance(who, Refusal):
            return refused(request, who)
        page = page_of(request, ctx, who)
        try:
            return await run_in_threadpool(fn, page, ctx)
        except BadRequest as exc:
            return error_page(page, exc)

    endpoint.__name__ = fn.__name__
    return endpoint


def action(fn: Callable[[Page, Context, Form], Response]) -> Endpoint:
    """A POST action: same-origin, a valid CSRF token for this visitor, and an operator."""

    async def endpoint(request: Request) -> Response:
        ctx, who = visitor_of(request)
        if isinstance(who, Refusal):
            return refused(request, who)
        if not same_origin(request.headers):
            return refused(request, Refusal(403, "a cross-site request cannot act on jobs (Sec-Fetch-Site/Origin)"))
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > FORM_MAX_BYTES:
            return refused(request, Refusal(413, "the form is too large"))
        body = await request.body()
        if len(body) > FORM_MAX_BYTES:
            return refused(request, Refusal(413, "the form is too large"))
        form = Form(parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True))
        if not ctx.access.csrf_valid(form.one("csrf"), who):
            return refused(request, Refusal(403, "the form's token is missing or expired; reload the page and retry"))
        if not who.may_act:
            why = "the dashboard is read-only" if ctx.access.read_only else f"{who.user or 'you'} may only view"
            return refused(request, Refusal(403, why))
        page = page_of(request, ctx, who)
        try:
            return await run_in_threadpool(fn, page, ctx, form)
        except BadRequest as exc:
            return error_page(page, exc)
        except LookupError as exc:
            return error_page(page, BadRequest(str(exc).strip("'\""), 404))
        except (QuebecError, RuntimeError, ValueError, TypeError) as exc:
            log.info("dashboard.action_refused action=%s error=%s", fn.__name__, exc)
            return error_page(page, BadRequest(str(exc), 409))

    endpoint.__name__ = fn.__name__
    return endpoint


def done(page: Page, form: Form, default: str, code: str, count: int) -> RedirectResponse:
    """303 back to the page the form came from (a path of ours only), reporting what was done."""
    back = form.one("back")
    parts = urlsplit(back)
    ours = back.startswith(page.base + "/") and not back.startswith("//") and not parts.scheme and not parts.netloc
    path, query = (parts.path, parse_qs(parts.query)) if ours else (page.url(default), {})
    query = {k: v for k, v in query.items() if k not in ("done", "n")}
    query.update(done=[code], n=[str(count)])
    return RedirectResponse(f"{path}?{urlencode(query, doseq=True)}", status_code=303)


def query_int(page: Page, name: str, default: int | None, low: int, high: int) -> int | None:
    raw = page.request.query_params.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise BadRequest(f"{name}={raw!r} must be a whole number from {low} to {high}")
    return int(raw)


def pass_through(value: Any) -> Any:
    return value
