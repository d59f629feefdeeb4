"""systemd Type=notify: READY=1, STATUS=, WATCHDOG=1 and STOPPING=1 on a fake NOTIFY_SOCKET."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest

import quebec
from quebec.engine.systemd import SystemdNotifier


def _received(sock: socket.socket, until: str, within: float = 10.0) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            lines.extend(sock.recv(4096).decode().splitlines())
        except TimeoutError:
            break
        if until in lines:
            return lines
    raise AssertionError(f"{until} never came; got {lines}")


def test_the_runtime_tells_systemd_it_is_ready_alive_busy_and_stopping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        monkeypatch.setenv("WATCHDOG_USEC", "200000")
        qc = quebec.Quebec(f"sqlite:///{tmp_path}/q.db?mode=rwc")
        try:
            qc.start(spawn=["worker"], threads=2)
            ready = _received(sock, "READY=1")
            assert "STATUS=quebec-worker[*] 0/2 busy" in ready
            assert "WATCHDOG=1" in _received(sock, "WATCHDOG=1")
            qc.quiet()
            assert "STATUS=quebec-worker[*] quiet" in _received(sock, "STATUS=quebec-worker[*] quiet")
            qc.stop()
            assert "STOPPING=1" in _received(sock, "STOPPING=1")
        finally:
            qc.close()


def test_without_notify_socket_nothing_is_sent_and_an_abstract_address_is_understood() -> None:
    assert not SystemdNotifier({}).active
    notifier = SystemdNotifier({"NOTIFY_SOCKET": "@quebec-test-" + str(time.monotonic_ns())})
    assert notifier.active and notifier.watchdog_every is None
    notifier.send("READY=1")  # nobody listens: logged once, never raised
    notifier.send("READY=1")


def test_the_watchdog_is_pinged_once_per_half_period_and_status_sent_when_it_changes(monkeypatch: Any) -> None:
    sent: list[tuple[str, ...]] = []
    notifier = SystemdNotifier({"NOTIFY_SOCKET": "/nonexistent", "WATCHDOG_USEC": "1000000"})
    monkeypatch.setattr(notifier, "send", lambda *lines: sent.append(lines))
    notifier.tick("a")
    notifier.tick("a")  # within half the watchdog period: no second ping, same status
    assert sent == [("WATCHDOG=1", "STATUS=a")]
