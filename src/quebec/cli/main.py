"""`python -m quebec`: the worker for job packages, and the commands to inspect and operate.

    python -m quebec <package> [<package> …] [--once]     run (the default command)
    python -m quebec jobs list                            a command

A first word that names no command is a package, and so is a group's name without one
of its subcommands after it: `python -m quebec jobs` runs the package `jobs` (the spec's
quickstart), `python -m quebec jobs list` lists jobs.

Exit statuses: 0 done; 1 a user or database error, one sentence on stderr (and, for
`--once`, a job that failed); 2 a usage error (unknown option, missing or bad argument);
130 interrupted. Never a traceback.

To add a command, write it in a module of its own and register it in COMMANDS below.
A command written against argv (`run(argv) -> int`) is registered with `argv_command`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

import click

from quebec.cli import batches, dashboard, failed, jobs, keys, processes, queues, recurring, stats, worker
from quebec.cli.common import CommandError
from quebec.errors import QuebecError

PROG = "python -m quebec"
USAGE = """usage: python -m quebec <package> [<package> ...] [--once [--max-jobs N] [--max-seconds S]]
       python -m quebec <command> [<subcommand>] [options] [--json]
       python -m quebec --help | --version

Discovers every quebec.BaseClass subclass under the packages, creates the tables
(unless QUEBEC_CREATE_TABLES=false) and runs worker, dispatcher and scheduler until TERM/INT.
With --once (or `drain <package>`) it runs what is due now and exits: 0 when every job
finished, 1 when one failed. Settings come from QUEBEC_* variables and queue.yml, as for
Quebec() (docs/configuration.md); the database URL from QUEBEC_DATABASE_URL, DATABASE_URL
or queue.yml's database: url:. Every command takes --json; `<command> --help` says more.
Exit status: 0 done, 1 user or database error (or a failed job for --once), 2 usage error."""
_HELP = ("-h", "--help")


def argv_command(name: str, run: Callable[[Sequence[str]], int], short_help: str) -> click.Command:
    """A command written against argv (`run(argv) -> int`), plugged in as it is: everything
    after its name, --help included, is passed to it untouched."""

    @click.command(
        name,
        short_help=short_help,
        add_help_option=False,
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )
    @click.argument("argv", nargs=-1, type=click.UNPROCESSED)
    def command(argv: tuple[str, ...]) -> int:
        return int(run(list(argv)))

    return command


# One line per command; a group's subcommands live in its module.
COMMANDS: list[click.Command] = [
    worker.run,
    worker.drain,
    jobs.jobs,
    queues.queues,
    processes.processes,
    stats.stats,
    failed.failed,
    keys.keys,
    recurring.recurring,
    batches.batches,
    dashboard.dashboard,
]


class QuebecGroup(click.Group):
    """The root: a command line whose first word names no command runs packages."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and self._names_packages(args):
            args = [worker.run.name or "run", *args]
        return super().parse_args(ctx, args)

    def _names_packages(self, args: Sequence[str]) -> bool:
        first = args[0]
        if first in (*_HELP, "-V", "--version"):
            return False
        command = self.commands.get(first)
        if command is None:
            return True  # a package, or an option of `run` (`--once app.jobs`)
        if isinstance(command, click.Group):
            follows = args[1] if len(args) > 1 else None
            return follows not in (*command.commands, *_HELP)
        return False

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write(USAGE + "\n")
        self.format_commands(ctx, formatter)


def root() -> QuebecGroup:
    from quebec import __version__

    group = QuebecGroup(
        "quebec",
        context_settings={"help_option_names": list(_HELP)},
        params=[
            click.Option(
                ["-V", "--version"],
                is_flag=True,
                expose_value=False,
                is_eager=True,
                help="Print the version and exit.",
                callback=lambda ctx, _, value: _version(ctx, __version__) if value else None,
            )
        ],
    )
    for command in COMMANDS:
        group.add_command(command)
    return group


def _version(ctx: click.Context, version: str) -> None:
    click.echo(f"quebec {version}")
    ctx.exit(0)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(USAGE, file=sys.stderr)
        return 2
    try:
        result = root().main(args, prog_name=PROG, standalone_mode=False)
    except click.UsageError as exc:
        print(f"quebec: error: {usage_sentence(exc)}", file=sys.stderr)
        return 2
    except (CommandError, QuebecError, ValueError, click.ClickException) as exc:
        text = exc.format_message() if isinstance(exc, click.ClickException) else str(exc)
        print(f"quebec: error: {_one_line(text)}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, click.Abort):
        return 130
    return int(result or 0)


def usage_sentence(exc: click.UsageError) -> str:
    """click's message as one sentence: what is wrong, then where the usage is."""
    if isinstance(exc, click.NoSuchOption):
        text = f"unknown option {exc.option_name!r}"
        if exc.possibilities:
            text += f" (did you mean {' or '.join(sorted(exc.possibilities))}?)"
    else:
        text = exc.format_message()
        text = text[:1].lower() + text[1:]
    where = exc.ctx.command_path if exc.ctx is not None else PROG
    return f"{_one_line(text).rstrip('.')}; see `{where} --help`"


def _one_line(text: str) -> str:
    return " ".join(text.split())
