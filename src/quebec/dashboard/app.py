"""The dashboard as an ASGI application: `ControlPlaneASGI(qc)`, which `qc.asgi_app()` returns."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

from quebec.dashboard.core import Context
from quebec.dashboard.routes import all_routes
from quebec.dashboard.security import Access, AuthCallable
from quebec.errors import ConfigError

if TYPE_CHECKING:
    from quebec.app import Quebec

STATIC = Path(__file__).parent / "static"
# Scripts and styles from our own /static only (no inline script, no eval, no CDN); no
# framing; forms post only to us.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]


class ControlPlaneASGI:
    """The dashboard of one Quebec instance, as an ASGI app to serve or mount:
    `app.mount("/quebec", qc.asgi_app())` (links and redirects follow the mount's root_path).

    auth: a callable `auth(request) -> "operator" | "viewer" | None`, for the application's
    own sign-in; without it the QUEBEC_CONTROL_PLANE_* credentials apply (security.py).
    read_only: everyone is a viewer. secret: signs the forms' CSRF tokens (default
    QUEBEC_CONTROL_PLANE_SECRET, else random per process)."""

    def __init__(
        self,
        quebec_instance: Quebec,
        backend: str | None = None,
        *,
        auth: AuthCallable | None = None,
        read_only: bool | None = None,
        secret: str | bytes | None = None,
    ) -> None:
        if backend not in (None, "starlette"):
            raise ConfigError(f"backend={backend!r}: this dashboard is built on Starlette only; leave backend unset")
        self.quebec = quebec_instance
        self.access = Access.from_env(auth=auth, read_only=read_only, secret=secret)
        routes = [*all_routes(), Mount("/static", app=StaticFiles(directory=STATIC), name="static")]
        self.app = Starlette(routes=routes)
        self.app.state.cp = Context(quebec_instance, self.access)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *(h for h in HEADERS if h[0] not in present)]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def __repr__(self) -> str:
        return f"ControlPlaneASGI({self.quebec!r})"


def asgi_app(quebec_instance: Quebec, **options: Any) -> ControlPlaneASGI:
    return ControlPlaneASGI(quebec_instance, **options)
