"""Quebec's control-plane methods (the dashboard, docs/dashboard.md), mixed into `Quebec`.

The dashboard is an adapter above this API, so it is imported when first asked for, never
by `import quebec`: an application without the `dashboard` extra never loads Starlette.
"""

from __future__ import annotations

import importlib
import logging
import os
import subprocess
import sys
from typing import Any

from quebec.errors import ConfigError

log = logging.getLogger("quebec")
ENV = "QUEBEC_CONTROL_PLANE"


def _dashboard(module: str) -> Any:
    try:
        return importlib.import_module(f"quebec.dashboard.{module}")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in ("starlette", "jinja2", "uvicorn", "markupsafe"):
            raise ConfigError(
                f"the dashboard needs {exc.name}, which is not installed; pip install 'quebec[dashboard]'"
            ) from None
        raise


class ControlPlaneMethods:
    _control_plane: Any = None  # the ControlPlaneServer this instance started, if any
    db: Any
    settings: Any

    def asgi_app(self, backend: str | None = None, **options: Any) -> Any:
        """The dashboard as an ASGI app (quebec.ControlPlaneASGI) to mount in FastAPI/Starlette:
        `app.mount("/quebec", qc.asgi_app(auth=my_auth))`. Options: auth, read_only, secret."""
        return _dashboard("app").ControlPlaneASGI(self, backend, **options)

    def start_control_plane(self, addr: str, **options: Any) -> Any:
        """Serve the dashboard on `addr` ("127.0.0.1:5006") in a background thread and return
        the server (`.url`, `.stop()`). Any address but loopback needs credentials."""
        if self._control_plane is not None and self._control_plane.running:
            raise ConfigError(
                f"this Quebec already serves its dashboard on {self._control_plane.url}; stop_control_plane() first"
            )
        self._control_plane = _dashboard("server").start_control_plane(self, addr, **options)
        return self._control_plane

    def stop_control_plane(self) -> None:
        server, self._control_plane = self._control_plane, None
        if server is not None:
            server.stop()

    def _serve_control_plane(self, addr: str | None) -> None:
        """run()/start(): serve the dashboard when control_plane= or QUEBEC_CONTROL_PLANE names an address."""
        addr = addr or os.environ.get(ENV, "").strip() or None
        if addr is not None and self._control_plane is None:
            self.start_control_plane(addr)

    def _control_plane_process(self, addr: str | None) -> subprocess.Popen[bytes] | None:
        """Under the fork supervisor: the dashboard as a process of its own (`python -m quebec
        dashboard`, fork and exec), so that no server thread runs in the process that forks and
        no worker inherits its socket. It opens this instance's database and table prefix, and
        gets the settings its pages use, through the environment. Its bind is checked here
        first, so a refusal stops run() before anything starts."""
        addr = addr or os.environ.get(ENV, "").strip() or None
        if addr is None:
            return None
        host, _ = _dashboard("server").parse_addr(addr)
        security = _dashboard("security")
        security.check_bind(host, security.Access.from_env())
        env = {
            **os.environ,
            ENV: addr,
            "QUEBEC_DATABASE_URL": self.db.url,
            "QUEBEC_TABLE_NAME_PREFIX": self.db.tables.prefix,
            "QUEBEC_RECURRING_PAUSE": "true" if self.settings.recurring_pause else "false",
            "QUEBEC_PROCESS_ALIVE_THRESHOLD": repr(float(self.settings.process_alive_threshold)),
        }
        env.pop("QUEBEC_SUPERVISOR", None)
        env.pop("DATABASE_URL", None)  # QUEBEC_DATABASE_URL above is the one
        log.info("control_plane.process addr=%s", addr)
        return subprocess.Popen([sys.executable, "-m", "quebec", "dashboard", "--bind", addr], env=env)

    @staticmethod
    def _stop_control_plane_process(process: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
        if process is None:
            return
        try:
            process.terminate()
            process.wait(timeout)
        except ChildProcessError:
            pass  # the supervisor reaped it already (it waits for any child)
        except subprocess.TimeoutExpired:
            process.kill()
