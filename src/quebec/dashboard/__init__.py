"""The control plane: a web dashboard for Quebec (Starlette, Jinja2, htmx vendored).

Needs the `dashboard` extra: `pip install 'quebec[dashboard]'`. See docs/dashboard.md.
"""

from __future__ import annotations

from quebec.dashboard.app import ControlPlaneASGI, asgi_app
from quebec.dashboard.security import Role

__all__ = ["ControlPlaneASGI", "Role", "asgi_app"]
