"""build and check_dist sessions on real sample projects of three build backends."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import git, run_nox

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("backend", ["hatchling", "setuptools", "flit-core"])
def test_build_then_check(make_project: Callable[..., Path], backend: str) -> None:
    root = make_project(backend=backend)
    listed = run_nox(root, "-l")
    assert "build" in listed.stdout and "check_dist" in listed.stdout, listed.stdout
    built = run_nox(root, "-s", "build")
    assert built.returncode == 0, built.stdout
    files = sorted(p.name for p in (root / "dist").iterdir())
    assert len(files) == 2, files
    assert files[0].endswith(".whl") and files[1].endswith(".tar.gz")
    for path in (root / "dist").iterdir():
        import hashlib

        assert hashlib.sha256(path.read_bytes()).hexdigest() in built.stdout
    checked = run_nox(root, "-s", "check_dist")
    assert checked.returncode == 0, checked.stdout
    assert "pass" in checked.stdout
    # importing commitizen must not silence nox's own logger (it disables existing loggers)
    assert "Session check_dist was successful" in checked.stdout
    assert git(root, "status", "--porcelain") == ""
