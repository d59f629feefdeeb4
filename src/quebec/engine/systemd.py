"""Tell systemd (Type=notify) and `ps` what this process is doing.

With NOTIFY_SOCKET set (systemd does so for Type=notify units) the supervisor sends
READY=1 once started, STATUS= lines as its busy threads change, WATCHDOG=1 every half
WATCHDOG_USEC from its main loop (so a wedged loop stops the pings and systemd restarts
the unit), and STOPPING=1 when shutdown begins. It is the sd_notify protocol: one
datagram per message on a Unix socket, `@` meaning Linux's abstract namespace — a few
lines, no dependency. Without NOTIFY_SOCKET every call does nothing.

The process title (`ps`, `top`) says the same — `quebec-worker[default,mail*] 3/5 busy` —
when the optional `setproctitle` package is installed (`pip install 'quebec[proctitle]'`).
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Mapping
from typing import Any

log = logging.getLogger("quebec.supervisor")


class SystemdNotifier:
    def __init__(self, environ: Mapping[str, str]) -> None:
        path = environ.get("NOTIFY_SOCKET", "")
        self._address: str | None = ("\0" + path[1:]) if path.startswith("@") else (path or None)
        usec = environ.get("WATCHDOG_USEC", "").strip()
        self.watchdog_every = int(usec) / 2_000_000 if usec.isdigit() and int(usec) > 0 else None
        self._next_ping = 0.0
        self._last_status = ""
        self._failed = False

    @property
    def active(self) -> bool:
        return self._address is not None

    def send(self, *lines: str) -> None:
        if self._address is None or self._failed:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(self._address)
                sock.sendall("\n".join(lines).encode("utf-8"))
        except OSError as exc:
            self._failed = True  # say it once; the service runs on without systemd's view
            log.warning("systemd.notify_failed socket=%s: %s; not notifying systemd any more", self._address, exc)

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}")
        self._last_status = status

    def tick(self, status: str) -> None:
        """From the main loop: the watchdog ping when due, STATUS= when it changed."""
        if self._address is None:
            return
        now = time.monotonic()
        lines = []
        if self.watchdog_every is not None and now >= self._next_ping:
            lines.append("WATCHDOG=1")
            self._next_ping = now + self.watchdog_every
        if status != self._last_status:
            lines.append(f"STATUS={status}")
            self._last_status = status
        if lines:
            self.send(*lines)

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping")


def set_title(title: str) -> bool:
    """Set the process title if setproctitle is installed; False when it is not."""
    try:
        import setproctitle  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return False
    module: Any = setproctitle
    module.setproctitle(title)
    return True
