"""`python -m quebec [run] <package> …`: discover jobs, create tables, run until TERM/INT;
with `--once` (or `drain <package> …`), run what is due now and exit.

`--once` exits 0 when every job it ran finished (or was retried or discarded as its class
says), 1 when one failed or its outcome could not be written, 2 on a usage error.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

from quebec.cli.common import CommandError
from quebec.cli.output import emit_json
from quebec.config.rules import boolean, components
from quebec.engine.oneshot import DrainReport, max_jobs_bound, max_seconds_bound

if TYPE_CHECKING:
    from quebec.app import Quebec

log = logging.getLogger("quebec.cli")
F = TypeVar("F", bound=Callable[..., Any])


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name, "")
    return boolean(value, f"environment variable {name}") if value.strip() else default


def _bound(check: Callable[[object], object]) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A click callback running the one-shot's own bound check (one rule for the API and the CLI)."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        try:
            return check(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx, param) from None

    return callback


def _one_shot_options(fn: F) -> F:
    fn = click.option(
        "--max-seconds",
        type=float,
        callback=_bound(max_seconds_bound),
        metavar="S",
        help="Stop claiming after S seconds; running jobs finish.",
    )(fn)
    fn = click.option(
        "--max-jobs", type=int, callback=_bound(max_jobs_bound), metavar="N", help="Claim at most N jobs."
    )(fn)
    return click.option("--json", "as_json", is_flag=True, help="Print the one-shot summary as JSON.")(fn)


_PACKAGES = click.argument("packages", metavar="PACKAGE...", nargs=-1, required=True)


@click.command("run", short_help="Run the worker for job packages (the default command).")
@_PACKAGES
@click.option("--once", is_flag=True, help="Run what is due now, then exit (as `drain`).")
@_one_shot_options
def run(packages: tuple[str, ...], once: bool, max_jobs: int | None, max_seconds: float | None, as_json: bool) -> int:
    """Discover every quebec.BaseClass subclass under the packages, create the tables (unless
    QUEBEC_CREATE_TABLES=false) and run worker and dispatcher until TERM/INT. `run` may be left
    out: `python -m quebec app.jobs` is `python -m quebec run app.jobs`."""
    if not once:
        given = [name for name, value in (("--max-jobs", max_jobs), ("--max-seconds", max_seconds)) if value]
        if given or as_json:
            raise click.UsageError(
                f"{(given or ['--json'])[0]} applies to a one-shot run; add --once (or use `python -m quebec drain`)"
            )
        return run_packages(packages)
    return drain_packages(packages, max_jobs=max_jobs, max_seconds=max_seconds, as_json=as_json)


@click.command("drain", short_help="Run what is due now for job packages, then exit (cron).")
@_PACKAGES
@_one_shot_options
def drain(packages: tuple[str, ...], max_jobs: int | None, max_seconds: float | None, as_json: bool) -> int:
    """Run the ready jobs and the due scheduled jobs on the configured worker threads, then
    exit: 0 when all finished, 1 when any failed. The same as `python -m quebec <package> --once`."""
    return drain_packages(packages, max_jobs=max_jobs, max_seconds=max_seconds, as_json=as_json)


def run_packages(packages: Sequence[str]) -> int:
    # The CLI's own variables first: a mistake there is reported before anything starts.
    spawn_env = os.environ.get("QUEBEC_SPAWN", "")
    spawn = components(spawn_env, "environment variable QUEBEC_SPAWN") if spawn_env.strip() else None
    create_tables = _env_flag("QUEBEC_CREATE_TABLES", True)
    qc = _quebec(packages)
    try:
        return qc.run(
            create_tables=create_tables, control_plane=os.environ.get("QUEBEC_CONTROL_PLANE") or None, spawn=spawn
        )
    finally:
        qc.close()


def drain_packages(packages: Sequence[str], *, max_jobs: int | None, max_seconds: float | None, as_json: bool) -> int:
    create_tables = _env_flag("QUEBEC_CREATE_TABLES", True)
    qc = _quebec(packages)
    for name in ("QUEBEC_SPAWN", "QUEBEC_CONTROL_PLANE"):
        if os.environ.get(name, "").strip():
            log.warning("%s has no effect on a one-shot run, which claims and dispatches due jobs itself", name)
    try:
        if create_tables:
            qc.create_tables()
        report = qc.drain_due(max_jobs=max_jobs, max_seconds=max_seconds)
    finally:
        qc.close()  # deregisters the drain's process row
    if as_json:
        emit_json(report.as_dict())
    else:
        click.echo(summary(report, max_jobs=max_jobs, max_seconds=max_seconds))
    return 0 if report.ok else 1


def summary(report: DrainReport, *, max_jobs: int | None, max_seconds: float | None) -> str:
    counts = [
        f"{n} {name}"
        for name, n in (
            ("finished", report.finished),
            ("failed", report.failed),
            ("retried", report.retried),
            ("discarded", report.discarded),
            ("handed back", report.released),
            ("unrecorded", report.unrecorded),
        )
        if n or name in ("finished", "failed")
    ]
    why = {
        "done": "nothing due is left",
        "max_jobs": f"stopped at --max-jobs {max_jobs}; jobs left are still ready",
        "max_seconds": f"stopped at --max-seconds {max_seconds:g}; jobs left are still ready" if max_seconds else "",
        "signal": "stopped by a signal; jobs left are still ready",
    }[report.stopped.value]
    failed = f"; failed job ids: {', '.join(map(str, report.failed_job_ids))}" if report.failed_job_ids else ""
    return f"ran {report.performed} job(s) in {report.seconds:.1f}s: {', '.join(counts)}; {why}{failed}"


def _quebec(packages: Sequence[str]) -> Quebec:
    """A Quebec with logging set up and the packages' job classes registered."""
    from quebec.app import Quebec
    from quebec.logger import setup_logging

    on_error = os.environ.get("QUEBEC_DISCOVER_ON_ERROR", "raise")
    setup_logging(
        level=os.environ.get("QUEBEC_LOG_LEVEL", "INFO").upper(), fmt=os.environ.get("QUEBEC_LOG_FORMAT") or None
    )
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    qc = Quebec()  # every setting, the URL included, through the one loader
    try:
        found = qc.discover_jobs(*packages, on_error=on_error)
    except ModuleNotFoundError as exc:
        qc.close()
        raise CommandError(
            f"cannot import {exc.name!r} while discovering jobs in {', '.join(packages)}; "
            f"run from the folder that contains the package, or fix the import{_command_hint(packages)}"
        ) from None
    except ImportError as exc:
        qc.close()
        raise CommandError(f"importing {', '.join(packages)} failed: {exc}") from None
    if not found:
        qc.close()
        raise CommandError(
            f"no quebec.BaseClass subclasses found in {', '.join(packages)}; define jobs there "
            f"and import them in the package's __init__.py or submodules"
        )
    for cls in found:
        log.info("Registered %s", cls.__qualname__)
    return qc


def _command_hint(packages: Sequence[str]) -> str:
    """`jobs lisst` was read as packages; say which command the first word also names."""
    ctx = click.get_current_context(silent=True)
    root = ctx.find_root().command if ctx is not None else None
    if isinstance(root, click.Group) and packages[0] in root.commands:
        return f" (to use the {packages[0]} command, see `python -m quebec {packages[0]} --help`)"
    return ""
