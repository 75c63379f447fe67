"""Bad input to the foundation sessions: one clear message and a non-zero exit, no traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import NOXFILE, run_nox


def assert_explained_failure(result_stdout: str, returncode: int, *needles: str) -> None:
    assert returncode != 0, result_stdout
    assert "Traceback" not in result_stdout, result_stdout
    assert "error:" in result_stdout, result_stdout
    for needle in needles:
        assert needle in result_stdout, result_stdout


@pytest.mark.parametrize(
    ("pyproject", "needles"),
    [
        (None, ["No pyproject.toml", "Fix:"]),
        ("[project]\nversion = '1.0'\n", ["no [project] name"]),
        ("[project]\nname = 'x'\n", ["no static [project] version"]),
        (
            "[project]\nname = 'x'\nversion = '1.0'\n[tool.releasekit]\ndist_dir = 'd'\n",
            ["dist_dir", "dist-dir"],
        ),
        ("[project\n", ["not valid TOML"]),
    ],
)
def test_bad_configuration(tmp_path: Path, pyproject: str | None, needles: list[str]) -> None:
    (tmp_path / "noxfile.py").write_text(NOXFILE)
    if pyproject is not None:
        (tmp_path / "pyproject.toml").write_text(pyproject)
    result = run_nox(tmp_path, "-s", "check_dist")
    assert_explained_failure(result.stdout, result.returncode, *needles)


def test_missing_and_empty_dist_dir(project_dir: Path) -> None:
    result = run_nox(project_dir, "-s", "check_dist")
    assert_explained_failure(result.stdout, result.returncode, "does not exist", "nox -s build")
    (project_dir / "dist").mkdir()
    result = run_nox(project_dir, "-s", "check_dist")
    assert_explained_failure(result.stdout, result.returncode, "No distribution files")


@pytest.mark.slow
def test_corrupt_wheel_and_failed_build(make_project: Callable[..., Path]) -> None:
    root = make_project()
    assert run_nox(root, "-s", "build").returncode == 0
    (wheel,) = (root / "dist").glob("*.whl")
    wheel.write_bytes(b"garbage")
    result = run_nox(root, "-s", "check_dist")
    assert_explained_failure(result.stdout, result.returncode, wheel.name, "unreadable")
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("hatchling.build", "no_such.backend"))
    result = run_nox(root, "-s", "build")
    assert_explained_failure(result.stdout, result.returncode, "Building sample-pkg failed")
    assert wheel.exists(), "a failed build must not remove the previous files"


def test_unknown_argument(project_dir: Path) -> None:
    result = run_nox(project_dir, "-s", "build", "--", "--bogus")
    assert_explained_failure(result.stdout, result.returncode, "unrecognized arguments: --bogus")
