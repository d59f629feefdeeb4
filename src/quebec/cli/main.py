"""`python -m quebec <package> [<package> …]`: discover jobs, create tables, run.

User mistakes end with one sentence on stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from quebec.config.rules import boolean, components
from quebec.errors import QuebecError

USAGE = """usage: python -m quebec <package> [<package> ...]
       python -m quebec failed list|retry|discard [ID ... | --all] [--json]
       python -m quebec recurring list [--json]
       python -m quebec --help | --version

Discovers every quebec.BaseClass subclass under the packages, creates the tables
(unless QUEBEC_CREATE_TABLES=false) and runs worker, dispatcher and scheduler until TERM/INT.
Settings come from QUEBEC_* variables and queue.yml, as for Quebec() (docs/configuration.md);
the database URL from QUEBEC_DATABASE_URL, DATABASE_URL or queue.yml's database: url:."""


class UsageError(Exception):
    pass


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name, "")
    return boolean(value, f"environment variable {name}") if value.strip() else default


def run_packages(packages: Sequence[str]) -> int:
    from quebec.app import Quebec
    from quebec.logger import setup_logging

    # The CLI's own variables first: a mistake there is reported before anything starts.
    spawn_env = os.environ.get("QUEBEC_SPAWN", "")
    spawn = components(spawn_env, "environment variable QUEBEC_SPAWN") if spawn_env.strip() else None
    create_tables = _env_flag("QUEBEC_CREATE_TABLES", True)
    on_error = os.environ.get("QUEBEC_DISCOVER_ON_ERROR", "raise")
    setup_logging(
        level=os.environ.get("QUEBEC_LOG_LEVEL", "INFO").upper(), fmt=os.environ.get("QUEBEC_LOG_FORMAT") or None
    )
    log = logging.getLogger("quebec.cli")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    qc = Quebec()  # every setting, the URL included, through the one loader
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
    return qc.run(
        create_tables=create_tables, control_plane=os.environ.get("QUEBEC_CONTROL_PLANE") or None, spawn=spawn
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(USAGE, file=sys.stderr)
        return 1
    try:
        if args[0] in ("-h", "--help"):
            print(USAGE)
            return 0
        if args[0] in ("-V", "--version"):
            from quebec import __version__

            print(f"quebec {__version__}")
            return 0
        if args[0] == "failed":
            from quebec.cli.failed import run_failed

            return int(run_failed(args[1:]))
        if args[0] == "recurring":
            from quebec.cli.recurring import run_recurring

            return run_recurring(args[1:])
        options = [a for a in args if a.startswith("-")]
        if options:
            # Else `--once` would be imported as a package and fail as one.
            raise UsageError(
                f"unknown option {options[0]!r}; the options are --help and --version, and the rest "
                f"of the command line names packages (see python -m quebec --help)"
            )
        return run_packages(args)
    except (UsageError, QuebecError, ValueError) as exc:
        print(f"quebec: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
