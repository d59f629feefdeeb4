"""`python -m quebec <package> [<package> …]`: discover jobs, create tables, run.

User mistakes end with one sentence on stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from quebec.errors import QuebecError

USAGE = """usage: python -m quebec <package> [<package> ...]
       python -m quebec failed list|retry|discard [ID ... | --all] [--json]

Discovers every quebec.BaseClass subclass under the packages, creates the tables
(unless QUEBEC_CREATE_TABLES=false) and runs worker and dispatcher until TERM/INT.
The database URL comes from QUEBEC_DATABASE_URL or DATABASE_URL; every other option
from QUEBEC_* variables or queue.yml."""


class UsageError(Exception):
    pass


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise UsageError(f"{name}={value!r} is not a boolean; use true or false")


def database_url() -> str:
    url = os.environ.get("QUEBEC_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if not url:
        raise UsageError(
            "no database URL; set DATABASE_URL (or QUEBEC_DATABASE_URL), e.g. DATABASE_URL=sqlite:///demo.db?mode=rwc"
        )
    return url


def run_packages(packages: Sequence[str]) -> int:
    from quebec.app import Quebec
    from quebec.logger import setup_logging

    setup_logging(
        level=os.environ.get("QUEBEC_LOG_LEVEL", "INFO").upper(), fmt=os.environ.get("QUEBEC_LOG_FORMAT") or None
    )
    log = logging.getLogger("quebec.cli")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    on_error = os.environ.get("QUEBEC_DISCOVER_ON_ERROR", "raise")
    qc = Quebec(database_url())
    try:
        found = qc.discover_jobs(*packages, on_error=on_error)
    except ModuleNotFoundError as exc:
        raise UsageError(
            f"cannot import {exc.name!r} while discovering jobs in {', '.join(packages)}; "
            f"run from the folder that contains the package, or fix the import"
        ) from None
    except ImportError as exc:
        raise UsageError(f"importing {', '.join(packages)} failed: {exc}") from None
    if not found:
        raise UsageError(
            f"no quebec.BaseClass subclasses found in {', '.join(packages)}; define jobs there "
            f"and import them in the package's __init__.py or submodules"
        )
    for cls in found:
        log.info("Registered %s", cls.__qualname__)
    spawn_env = os.environ.get("QUEBEC_SPAWN")
    spawn = [s.strip() for s in spawn_env.split(",") if s.strip()] if spawn_env else None
    threads_env = os.environ.get("QUEBEC_WORKER_THREADS")
    return qc.run(
        create_tables=_flag("QUEBEC_CREATE_TABLES", True),
        control_plane=os.environ.get("QUEBEC_CONTROL_PLANE") or None,
        spawn=spawn,
        threads=int(threads_env) if threads_env and threads_env.isdigit() else None,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr if not args else sys.stdout)
        return 1 if not args else 0
    try:
        if args[0] == "failed":
            from quebec.cli.failed import run_failed

            return int(run_failed(args[1:], database_url()))
        return run_packages(args)
    except (UsageError, QuebecError, ValueError) as exc:
        print(f"quebec: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
