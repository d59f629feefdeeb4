"""What a process row says about the process that registers it: one shape for every kind."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping

import psutil

from quebec.types import ProcessInfo


def process_info(
    kind: str, key: str, hostname: str, extra: Mapping[str, object]
) -> tuple[ProcessInfo, dict[str, object]]:
    """The row to register for a `kind` process ("Worker", "Dispatcher"…) and its metadata.

    The metadata carries the OS process's start time, so pruning can tell a pid that was
    reused by another program from the process that registered.
    """
    started_at = psutil.Process(os.getpid()).create_time()
    metadata: dict[str, object] = {"started_at": started_at, "hostname": hostname, **extra}
    info = ProcessInfo(
        kind=kind,
        name=f"{key}-{secrets.token_hex(6)}",
        pid=os.getpid(),
        hostname=hostname,
        metadata=json.dumps(metadata),
    )
    return info, metadata
