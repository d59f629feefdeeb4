"""Serving the dashboard with uvicorn on a thread of this process (qc.start_control_plane)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import uvicorn

from quebec.dashboard.app import ControlPlaneASGI
from quebec.dashboard.security import check_bind
from quebec.errors import ConfigError

if TYPE_CHECKING:
    from quebec.app import Quebec

log = logging.getLogger("quebec.dashboard")
START_TIMEOUT = 10.0


def parse_addr(addr: str) -> tuple[str, int]:
    """'127.0.0.1:5006', '[::1]:5006', 'localhost:0' (0: any free port) → (host, port)."""
    if not isinstance(addr, str) or ":" not in addr:
        raise ConfigError(f"control plane address {addr!r} must be host:port, e.g. 127.0.0.1:5006")
    host, _, port = addr.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(
            f"control plane address {addr!r} must be host:port with a port from 0 to 65535, e.g. 127.0.0.1:5006"
        )
    return host, int(port)


class ControlPlaneServer:
    """A running dashboard: `.url`, `.stop()`."""

    def __init__(self, app: ControlPlaneASGI, sock: socket.socket) -> None:
        self.app = app
        self._sock = sock
        host, port = sock.getsockname()[:2]
        self.host, self.port = host, int(port)
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="quebec-control-plane", daemon=True)

    def _serve(self) -> None:
        try:
            self._server.run(sockets=[self._sock])
        except BaseException as exc:  # noqa: BLE001 - reported by start(), never kills the process
            log.error("control_plane.failed url=%s error=%s", self.url, exc)

    def start(self) -> ControlPlaneServer:
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError(f"the dashboard did not start on {self.url}; the log says why")
            time.sleep(0.01)
        log.info("control_plane.started url=%s", self.url)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        self._sock.close()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def __repr__(self) -> str:
        return f"ControlPlaneServer({self.url})"


def start_control_plane(quebec_instance: Quebec, addr: str, **options: Any) -> ControlPlaneServer:
    """Serve qc's dashboard on addr in a background thread; refuses, in one sentence, a
    non-loopback address without credentials and an address it cannot listen on."""
    host, port = parse_addr(addr)
    app = ControlPlaneASGI(quebec_instance, **options)
    check_bind(host, app.access)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot serve the dashboard on {addr}: {exc.strerror or exc}; pick another port") from None
    return ControlPlaneServer(app, sock).start()
