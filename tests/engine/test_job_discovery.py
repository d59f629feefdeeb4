"""qc.discover_jobs over a package written for the test, and registration errors."""

from __future__ import annotations

import secrets
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import quebec

JOB = "import quebec\n\n\nclass {name}(quebec.BaseClass):\n    def perform(self):\n        pass\n"

Package = Callable[[dict[str, str]], str]


@pytest.fixture
def package(tmp_path: Path) -> Iterator[Package]:
    """Writes a uniquely named package from {relative path: source}; returns its name.

    sys.path and sys.modules are put back afterwards, so no test sees another's modules.
    """
    names: list[str] = []
    sys.path.insert(0, str(tmp_path))

    def write(files: dict[str, str]) -> str:
        name = f"qjobs_{secrets.token_hex(4)}"
        names.append(name)
        for relative, source in {"__init__.py": "", **files}.items():
            path = tmp_path / name / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source))
        return name

    yield write
    sys.path.remove(str(tmp_path))
    for module in [m for m in sys.modules if any(m == n or m.startswith(n + ".") for n in names)]:
        del sys.modules[module]


def names(classes: list[type[quebec.BaseClass]]) -> list[str]:
    return sorted(c.__qualname__ for c in classes)


TREE = {
    "a.py": JOB.format(name="AJob"),
    "sub/__init__.py": "",
    "sub/b.py": JOB.format(name="BJob") + "\n\nclass Helper:\n    pass\n",
    "sub/deeper/__init__.py": "",
    "sub/deeper/c.py": JOB.format(name="CJob"),
}


def test_discover_jobs_registers_job_classes_of_every_submodule(qc: quebec.Quebec, package: Package) -> None:
    pkg = package(TREE)
    found = qc.discover_jobs(pkg)
    assert names(found) == ["AJob", "BJob", "CJob"]
    for cls in found:
        assert cls._quebec is qc
    job = sys.modules[f"{pkg}.sub.deeper.c"].CJob.perform_later()
    assert qc.get_job(job.id).class_name == "CJob"


def test_discover_jobs_without_recursion_stays_at_the_top_level(qc: quebec.Quebec, package: Package) -> None:
    pkg = package(TREE)
    assert names(qc.discover_jobs(pkg, recursive=False)) == ["AJob"]


def test_discover_jobs_takes_several_packages(qc: quebec.Quebec, package: Package) -> None:
    first = package({"x.py": JOB.format(name="XJob")})
    second = package({"y.py": JOB.format(name="YJob")})
    assert names(qc.discover_jobs(first, second)) == ["XJob", "YJob"]


def test_discover_jobs_ignores_job_classes_imported_from_elsewhere(qc: quebec.Quebec, package: Package) -> None:
    lib = package({"base.py": JOB.format(name="LibJob")})
    app = package({"jobs.py": f"from {lib}.base import LibJob\n" + JOB.format(name="AppJob")})
    assert names(qc.discover_jobs(app)) == ["AppJob"]


def test_discover_jobs_raises_import_errors_of_submodules_by_default(qc: quebec.Quebec, package: Package) -> None:
    pkg = package({"good.py": JOB.format(name="GoodJob"), "broken.py": "import not_a_module_anywhere_xyz\n"})
    with pytest.raises(ImportError, match="not_a_module_anywhere_xyz"):
        qc.discover_jobs(pkg)


def test_discover_jobs_on_error_warn_skips_broken_submodules(qc: quebec.Quebec, package: Package) -> None:
    pkg = package({"good.py": JOB.format(name="GoodJob"), "broken.py": "raise RuntimeError('optional extra')\n"})
    with pytest.warns(RuntimeWarning, match=rf"{pkg}\.broken"):
        found = qc.discover_jobs(pkg, on_error="warn")
    assert names(found) == ["GoodJob"]


def test_discover_jobs_imports_the_top_level_package_strictly(qc: quebec.Quebec, package: Package) -> None:
    pkg = package({"__init__.py": "import not_a_module_anywhere_xyz\n"})
    with pytest.raises(ImportError):
        qc.discover_jobs(pkg, on_error="warn")
    with pytest.raises(ImportError):
        qc.discover_jobs(f"{pkg}_missing", on_error="warn")


def test_discover_jobs_refuses_two_classes_with_the_same_qualname(qc: quebec.Quebec, package: Package) -> None:
    pkg = package({"one.py": JOB.format(name="SameJob"), "two.py": JOB.format(name="SameJob")})
    with pytest.raises(ValueError, match="SameJob"):
        qc.discover_jobs(pkg)


def test_discover_jobs_rejects_a_bad_on_error_value(qc: quebec.Quebec, package: Package) -> None:
    pkg = package({})
    with pytest.raises(ValueError, match="on_error"):
        qc.discover_jobs(pkg, on_error="ignore")
