"""The public API: the names `releasekit` exports, and that each stays what it names (modelled
on httpx's test_exported_members.py).

The lazy exports once shared their names with modules: after `import releasekit.check`,
`releasekit.check(...)` raised "'module' object is not callable". These tests import every
module first, then look at each export.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import releasekit
from conftest import write_project
from releasekit.errors import DistributionError

PUBLIC_API = [
    "AuditResult",
    "Credentials",
    "Distribution",
    "Index",
    "IndexClient",
    "IndexStatus",
    "LocalIndex",
    "Project",
    "UploadResult",
    "VerifyReport",
    "WaitPolicy",
    "YankRequest",
    "YankResult",
    "__version__",
    "audit",
    "build",
    "check",
    "doctor",
    "errors",
    "load_projects",
    "mint_token",
    "read_token",
    "rehearse",
    "release",
    "resolve_credentials",
    "resolve_index",
    "scan_secrets",
    "stamped",
    "status",
    "upload",
    "verify",
    "yank",
]


@pytest.fixture(scope="module")
def every_module_imported() -> list[str]:
    """Import every module under releasekit, as a program using the whole library would."""
    names = [
        info.name for info in pkgutil.walk_packages(releasekit.__path__, f"{releasekit.__name__}.")
    ]
    for name in names:
        importlib.import_module(name)
    return names


def test_the_public_api_is_pinned() -> None:
    assert releasekit.__all__ == PUBLIC_API


def test_every_module_is_found(every_module_imported: list[str]) -> None:
    """The walk reaches the private modules and the subpackages' modules."""
    for name in ("releasekit._check", "releasekit.nox", "releasekit.indexes.simple"):
        assert name in every_module_imported
    assert "releasekit.ci.github" in every_module_imported


def test_every_public_name_is_an_attribute_and_listed_by_dir() -> None:
    for name in releasekit.__all__:
        assert hasattr(releasekit, name), name
    assert set(releasekit.__all__) <= set(dir(releasekit))


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        releasekit.nothing  # noqa: B018


@pytest.mark.usefixtures("every_module_imported")
@pytest.mark.parametrize("name", [n for n in PUBLIC_API if n not in ("errors", "__version__")])
def test_each_export_is_still_its_function_or_class(name: str) -> None:
    value = getattr(releasekit, name)
    assert not inspect.ismodule(value)
    assert callable(value)
    assert inspect.isclass(value) or inspect.isfunction(value)
    assert value.__name__ == name
    # Defined in releasekit, and the very object its defining module holds (unwrapped, as
    # conftest wraps mint_token to record the tokens it mints).
    assert value.__module__.startswith("releasekit.")
    defined = getattr(sys.modules[value.__module__], name)
    assert inspect.unwrap(value) is inspect.unwrap(defined)


@pytest.mark.usefixtures("every_module_imported")
def test_errors_and_version() -> None:
    assert releasekit.errors is sys.modules["releasekit.errors"]
    assert issubclass(releasekit.errors.CheckFailed, releasekit.errors.ReleasekitError)
    assert isinstance(releasekit.__version__, str)


@pytest.mark.usefixtures("every_module_imported")
def test_the_exports_are_the_private_modules_functions() -> None:
    from releasekit import _check, _upload

    assert releasekit.check is _check.check
    assert releasekit.upload is _upload.upload


@pytest.mark.usefixtures("every_module_imported")
def test_calling_an_export_reaches_the_action(tmp_path: Path) -> None:
    """Called, `check` checks: it says what is missing instead of a TypeError."""
    project = releasekit.Project.load(write_project(tmp_path / "sample-pkg"))
    with pytest.raises(DistributionError, match="does not exist"):
        releasekit.check(project)


def test_import_releasekit_imports_nothing_else_of_it() -> None:
    """The re-exports are lazy: `import releasekit` (and so `import releasekit.nox`) does not
    pay for the actions and their dependencies."""
    code = "import sys, releasekit; print(sorted(m for m in sys.modules if 'releasekit' in m))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["['releasekit']"]
