"""recurring.yml: Solid Queue's static recurring tasks, one environment section per QUEBEC_ENV.

```yaml
production:
  cleanup_job:               # task key
    class: CleanupJob        # a registered job class (its __qualname__)
    schedule: every hour     # docs/recurring.md lists the syntax
    args: [42, {k: v}]       # positional arguments (a single value is one argument)
    queue: maintenance       # optional: else the class's queue
    priority: 10             # optional: else the class's priority
    description: nightly     # optional
```

The file is the first of $SOLID_QUEUE_RECURRING_SCHEDULE, $QUEBEC_RECURRING_SCHEDULE (the
`recurring_schedule` setting), recurring.yml, config/recurring.yml. A task with a mistake is
left out with one sentence naming the file, the key, the field and the fix; the others run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from quebec.config.sources import _parse
from quebec.errors import ConfigError, QuebecError
from quebec.identifiers import queue_name
from quebec.schedules import NextRunFunction, RecurringTask, parse

RECURRING_FILES = ("recurring.yml", "config/recurring.yml")
_FIELDS = ("class", "schedule", "args", "queue", "priority", "description")


@dataclass(frozen=True, slots=True)
class StaticTasks:
    """What the file says. `tasks` is None when there is no file or it cannot be read: then
    the table's static rows are left as they are (an unreadable file must not delete them)."""

    path: str | None = None
    tasks: list[RecurringTask] | None = None
    problems: list[str] = field(default_factory=list)


def locate(configured: str | None, cwd: str) -> tuple[str, str] | None:
    """(name for messages, path) of the schedule file, or None when there is none."""
    if configured:
        path = os.path.join(cwd, os.path.expanduser(configured))
        return (configured, os.path.abspath(path)) if os.path.isfile(path) else (configured, "")
    for name in RECURRING_FILES:
        path = os.path.join(cwd, name)
        if os.path.isfile(path):
            return name, os.path.abspath(path)
    return None


def load_static(
    configured: str | None,
    env_name: str,
    *,
    cwd: str | None = None,
    environ: Mapping[str, str] | None = None,
    functions: Mapping[str, NextRunFunction] | None = None,
) -> StaticTasks:
    located = locate(configured, cwd or os.getcwd())
    if located is None:
        return StaticTasks()
    display, path = located
    if not path:
        return StaticTasks(
            display,
            None,
            [
                f"recurring schedule file {display!r} (SOLID_QUEUE_RECURRING_SCHEDULE / QUEBEC_RECURRING_SCHEDULE) "
                f"does not exist; fix the path, or unset the variable to use recurring.yml"
            ],
        )
    try:
        document = _parse(display, path, os.environ if environ is None else environ)
    except ConfigError as exc:
        return StaticTasks(display, None, [f"{exc}; no static recurring task is loaded or changed"])
    section, where = _section(document, display, env_name)
    if section is None:
        return StaticTasks(display, None, [where])
    tasks: list[RecurringTask] = []
    problems: list[str] = []
    for key, spec in section.items():
        try:
            tasks.append(_task(key, spec, functions or {}))
        except _Bad as bad:
            problems.append(f"{where}{key}{bad.field}: {bad.sentence}; this task is left out, the others run")
    return StaticTasks(display, tasks, problems)


class _Bad(Exception):
    def __init__(self, field_: str, sentence: str) -> None:
        super().__init__(sentence)
        self.field = f".{field_}" if field_ else ""
        self.sentence = sentence


def _section(document: object, display: str, env_name: str) -> tuple[dict[Any, Any] | None, str]:
    if document is None:
        return {}, f"{display} "
    if not isinstance(document, dict):
        return None, f"{display} must map environments (production:, ...) to tasks, got {type(document).__name__}"
    if env_name in document:
        section = document[env_name]
        if section is None:
            return {}, f"{display} {env_name}."
        if not isinstance(section, dict):
            return None, f"{display} {env_name} must map task keys to tasks, got {section!r}"
        return section, f"{display} {env_name}."
    if all(isinstance(v, dict) and ("class" in v or "schedule" in v) for v in document.values()):
        return document, f"{display} "  # tasks at the top level, no environments
    found = ", ".join(sorted(str(k) for k in document))
    return None, (
        f"{display} has no {env_name!r} section, which QUEBEC_ENV selects (sections found: {found}); "
        f"add a {env_name}: section or set QUEBEC_ENV to one of those"
    )


def _task(key: object, spec: object, functions: Mapping[str, NextRunFunction]) -> RecurringTask:
    if not isinstance(key, str) or not key:
        raise _Bad("", f"task key {key!r} must be a non-empty string")
    if not isinstance(spec, dict):
        raise _Bad("", f"a task must be a mapping with class: and schedule:, got {spec!r}")
    unknown = [str(k) for k in spec if k not in _FIELDS]
    if "command" in unknown:
        raise _Bad("command", "command: tasks run Ruby code, which Quebec cannot; name a job class with class:")
    if unknown:
        raise _Bad(unknown[0], f"is not a task field; the fields are {', '.join(_FIELDS)}")
    class_name = spec.get("class")
    if not isinstance(class_name, str) or not class_name:
        raise _Bad("class", f"must name a registered job class, such as class: CleanupJob, got {class_name!r}")
    schedule = spec.get("schedule")
    try:
        parse(schedule, functions)
    except ValueError as exc:
        raise _Bad("schedule", str(exc)) from None
    args = spec.get("args", [])
    arguments = tuple(args) if isinstance(args, list) else () if args is None else (args,)
    queue = spec.get("queue")
    if queue is not None:
        try:
            queue = queue_name(queue)
        except QuebecError as exc:
            raise _Bad("queue", str(exc)) from None
    priority = spec.get("priority")
    if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)):
        raise _Bad("priority", f"must be an integer (lower runs first), such as priority: 10, got {priority!r}")
    description = spec.get("description")
    if description is not None and not isinstance(description, str):
        raise _Bad("description", f"must be text, got {description!r}")
    assert isinstance(schedule, str)
    return RecurringTask(key, schedule.strip(), class_name, arguments, queue, priority, True, description)
