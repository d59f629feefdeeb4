"""class_name ↔ class, and discover_jobs() over packages."""

from __future__ import annotations

import importlib
import pkgutil
import warnings
from typing import Any

from quebec.function_jobs import FunctionJob
from quebec.job import BaseClass


class Registry:
    def __init__(self) -> None:
        self._classes: dict[str, type[BaseClass]] = {}

    def __contains__(self, class_name: str) -> bool:
        return class_name in self._classes

    def __len__(self) -> int:
        return len(self._classes)

    def names(self) -> list[str]:
        return sorted(self._classes)

    def get(self, class_name: str) -> type[BaseClass] | None:
        return self._classes.get(class_name)

    def classes(self) -> list[type[BaseClass]]:
        return list(self._classes.values())

    def add(self, cls: Any) -> type[BaseClass]:
        if not (isinstance(cls, type) and issubclass(cls, BaseClass)) or cls is BaseClass:
            raise TypeError(f"{cls!r} is not a job class; subclass quebec.BaseClass and define perform()")
        name = cls.__qualname__
        known = self._classes.get(name)
        if known is not None and known is not cls and _origin(known) != _origin(cls):
            raise ValueError(
                f"job class name {name!r} is taken by both {_origin(known)} and {_origin(cls)}; the worker "
                f"finds classes by __qualname__, so rename one of them"
            )
        self._classes[name] = cls
        return cls

    def discover(self, *packages: str, recursive: bool = True, on_error: str = "raise") -> list[type[BaseClass]]:
        """Register every BaseClass subclass defined under the given packages."""
        if not packages:
            raise ValueError("discover_jobs() needs at least one package name, e.g. discover_jobs('app.jobs')")
        if on_error not in ("raise", "warn"):
            raise ValueError(f"discover_jobs(on_error={on_error!r}) must be 'raise' or 'warn'")
        found: dict[str, type[BaseClass]] = {}
        for package in packages:
            for module in _modules(package, recursive=recursive, on_error=on_error):
                for value in vars(module).values():
                    if isinstance(value, FunctionJob):  # @qc.job functions: their job class
                        value = value.job_class
                    if (
                        isinstance(value, type)
                        and issubclass(value, BaseClass)
                        and value is not BaseClass
                        and _under(value.__module__, packages)
                    ):
                        other = found.get(value.__qualname__)
                        if other is not None and other is not value:
                            raise ValueError(
                                f"job class name {value.__qualname__!r} is defined in both {_origin(other)} and "
                                f"{_origin(value)}; the worker finds classes by __qualname__, so rename one"
                            )
                        found[value.__qualname__] = value
        return [self.add(cls) for cls in found.values()]


def _origin(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _under(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def _modules(package: str, *, recursive: bool, on_error: str) -> list[Any]:
    root = importlib.import_module(package)  # the top-level package is always strict
    modules = [root]
    path = getattr(root, "__path__", None)
    if path is None:
        return modules
    walker = (
        pkgutil.walk_packages(path, prefix=package + ".")
        if recursive
        else pkgutil.iter_modules(path, prefix=package + ".")
    )
    for info in walker:
        try:
            modules.append(importlib.import_module(info.name))
        except Exception as exc:
            if on_error == "raise":
                raise
            warnings.warn(
                f"discover_jobs skipped {info.name}: {type(exc).__name__}: {exc}", RuntimeWarning, stacklevel=3
            )
    return modules
