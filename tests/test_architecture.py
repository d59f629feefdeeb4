"""The layering of docs/architecture.md, checked: imports point down, dialect names stay in dialects."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "quebec"
# Packages that must not talk SQL themselves: they go through the store.
ABOVE_STORE = (
    "engine",
    "cli",
    "app.py",
    "app_enqueue.py",
    "app_draining.py",
    "app_waiting.py",
    "app_hooks.py",
    "job.py",
    "ops.py",
    "registry.py",
    "outcome.py",
    "hooks.py",
    "enqueuing.py",
    "operations.py",
    "metrics_control.py",
    "function_jobs.py",
    "waiting.py",
    "execution.py",
    "sealing.py",
    "dashboard",
    "app_control_plane.py",
)
DIALECT_NAME = re.compile(r"""["'](sqlite|postgres|postgresql|mysql|mariadb)["']""")


def _modules(*parts: str) -> list[Path]:
    out: list[Path] = []
    for part in parts:
        path = SRC / part
        out.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return out


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_nothing_above_the_store_imports_sqlalchemy_dialects_or_schema() -> None:
    offenders = {
        str(p.relative_to(SRC)): sorted(
            n
            for n in _imports(p)
            if n.split(".")[0] == "sqlalchemy" or n.startswith(("quebec.dialects", "quebec.schema"))
        )
        for p in _modules(*ABOVE_STORE)
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_lower_layers_never_import_the_runtime_or_the_public_api() -> None:
    lower = _modules(
        "store",
        "dialects",
        "schema",
        "config",
        "types.py",
        "errors.py",
        "arguments.py",
        "argument_rules.py",
        "retry.py",
    )
    offenders = {
        str(p.relative_to(SRC)): sorted(
            n for n in _imports(p) if n.startswith(("quebec.engine", "quebec.app", "quebec.cli"))
        )
        for p in lower
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_no_dialect_name_outside_the_dialects_package() -> None:
    hits = [
        f"{p.relative_to(SRC)}:{n}"
        for p in SRC.rglob("*.py")
        if "dialects" not in p.parts and "schema" not in p.parts
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if DIALECT_NAME.search(line)
    ]
    assert hits == []


def test_modules_stay_small() -> None:
    big = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py") if (n := len(p.read_text().splitlines())) > 500}
    assert big == {}
