"""`python -m quebec dashboard [PACKAGE...]`: serve the control plane on its own, until TERM/INT."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import click

DEFAULT_BIND = "127.0.0.1:5006"


@click.command("dashboard", short_help="Serve the web dashboard (control plane) until TERM/INT.")
@click.argument("packages", metavar="[PACKAGE...]", nargs=-1)
@click.option(
    "--bind",
    metavar="HOST:PORT",
    default=None,
    help=f"Where to listen (default QUEBEC_CONTROL_PLANE, else {DEFAULT_BIND}). Beyond loopback it needs "
    "QUEBEC_CONTROL_PLANE_USER/_PASSWORD or _TOKEN.",
)
@click.option("--read-only", is_flag=True, help="Nobody may act: every visitor is a viewer.")
def dashboard(packages: tuple[str, ...], bind: str | None, read_only: bool) -> int:
    """Serve the dashboard for the database the settings name. The packages' job classes are
    registered so that "run now" can enqueue recurring tasks; without them it is refused."""
    from quebec.app import Quebec
    from quebec.cli.worker import _quebec
    from quebec.logger import setup_logging

    addr = bind or os.environ.get("QUEBEC_CONTROL_PLANE", "").strip() or DEFAULT_BIND
    if packages:
        qc = _quebec(packages)
    else:
        setup_logging(level=os.environ.get("QUEBEC_LOG_LEVEL", "INFO").upper())
        qc = Quebec()  # every setting, the URL included, through the one loader
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    try:
        server = qc.start_control_plane(addr, read_only=read_only or None)
        click.echo(f"quebec dashboard on {server.url} (TERM or Ctrl-C stops it)", err=True)
        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            while not stop.wait(0.5):
                if not server.running:
                    return 1
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        return 0
    finally:
        qc.close()
