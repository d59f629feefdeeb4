"""qc.ping(): one round trip; False (never a raise, never a wait of retries) once the server is gone.

The server is cut by a TCP proxy of the test's own between Quebec and the shared server,
closed mid-test: the listener refuses new connections and the open ones are reset.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

import quebec
from conftest import backend_url


class Proxy:
    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._target)
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        # shutdown() first: it wakes the accept() blocked in the other thread, which would
        # otherwise keep the listening socket alive after close().
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            for s in self._sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()


@pytest.fixture(params=["postgresql", "mysql"])  # SQLite has no server to lose
def proxied(request: pytest.FixtureRequest, tmp_path: Path, prefix: str) -> Iterator[tuple[quebec.Quebec, Proxy]]:
    url = make_url(backend_url(request.param, tmp_path))
    proxy = Proxy(url.host or "127.0.0.1", url.port or {"postgresql": 5432, "mysql": 3306}[request.param])
    qc = quebec.Quebec(url.set(port=proxy.port).render_as_string(hide_password=False), table_name_prefix=prefix)
    yield qc, proxy  # no tables: ping needs none, and a server Quebec creates none at construction
    proxy.close()
    qc.db.dispose()


def test_ping_is_false_and_logs_why_once_the_server_is_gone(
    proxied: tuple[quebec.Quebec, Proxy], caplog: pytest.LogCaptureFixture
) -> None:
    qc, proxy = proxied
    assert qc.ping() is True
    proxy.close()
    began = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="quebec"):
        assert qc.ping() is False
        assert qc.ping() is False
    assert time.monotonic() - began < 5  # answered, not retried for the store's 30 s
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2 and all("database.ping_failed" in e and "did not answer" in e for e in errors)
