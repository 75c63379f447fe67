"""Monorepos: packages built, checked, uploaded and verified concurrently; the output of
each package shown as one block; every failing package listed."""

from __future__ import annotations

import io
import re
import threading
from pathlib import Path

import pytest
from rich.console import Console

from conftest import commit_monorepo, run_nox, write_project
from releasekit._project import Project, load_projects
from releasekit._report import Reporter, get_reporter, set_reporter
from releasekit._workspace import for_each
from releasekit.errors import ConfigError, PackagesFailed, ReleasekitError

NAMES = ("alpha-pkg", "beta-pkg", "gamma-pkg")


def monorepo(root: Path, names: tuple[str, ...] = NAMES) -> Path:
    for name in names:
        write_project(root / "packages" / name, name, "1.0.0")
    return commit_monorepo(root, [f"packages/{name}" for name in names], "feat: three packages")


def test_each_package_has_its_own_tag(tmp_path: Path) -> None:
    tags = [p.tag("1.0.0") for p in load_projects(monorepo(tmp_path))]
    assert tags == ["alpha-pkg-v1.0.0", "beta-pkg-v1.0.0", "gamma-pkg-v1.0.0"]


def test_for_each_runs_concurrently_and_lists_every_failure(tmp_path: Path) -> None:
    projects = load_projects(monorepo(tmp_path))
    stream = io.StringIO()
    set_reporter(Reporter(Console(file=stream, color_system=None, width=400), plain=True))
    all_started = threading.Barrier(len(projects), timeout=30)

    def action(project: Project) -> str:
        all_started.wait()  # only passes if every package runs at the same time
        for line in range(3):
            get_reporter().info(f"{project.name} line {line}")
        if project.name != "beta-pkg":
            raise ConfigError(f"{project.name} is broken.", fix=f"Mend {project.name}.")
        return project.name

    try:
        with pytest.raises(PackagesFailed) as failure:
            for_each(projects, action)
    finally:
        set_reporter(None)
    assert set(failure.value.failures) == {"alpha-pkg", "gamma-pkg"}
    message = str(failure.value)
    assert "2 of 3 packages failed" in message
    assert "Mend alpha-pkg." in message and "Mend gamma-pkg." in message
    output = stream.getvalue()
    for name in NAMES:  # each package's lines form one block under its title
        block = re.search(rf"^{name} \(.*\)(?: failed)?:\n((?:    .*\n)+)", output, re.MULTILINE)
        assert block is not None, output
        assert block.group(1) == "".join(f"    {name} line {n}\n" for n in range(3))


def test_one_failure_is_raised_as_it_is(tmp_path: Path) -> None:
    projects = load_projects(monorepo(tmp_path))
    set_reporter(Reporter(Console(file=io.StringIO()), plain=True))

    def action(project: Project) -> None:
        if project.name == "gamma-pkg":
            raise ReleasekitError("gamma failed")

    try:
        with pytest.raises(ReleasekitError, match="gamma failed") as failure:
            for_each(projects, action)
    finally:
        set_reporter(None)
    assert not isinstance(failure.value, PackagesFailed)


@pytest.mark.slow
def test_monorepo_sessions(tmp_path: Path) -> None:
    root = monorepo(tmp_path)
    result = run_nox(root, "-s", "build", "check_dist")
    assert result.returncode == 0, result.stdout
    for name in NAMES:
        dist = root / "packages" / name / "dist"
        assert len(list(dist.iterdir())) == 2
        assert f"{name} (" in result.stdout
    assert "Traceback" not in result.stdout

    for name in ("alpha-pkg", "gamma-pkg"):
        pyproject = root / "packages" / name / "pyproject.toml"
        pyproject.write_text(pyproject.read_text().replace("hatchling.build", "no_such.backend"))
    result = run_nox(root, "-s", "build")
    assert result.returncode != 0
    assert "Traceback" not in result.stdout
    assert "2 of 3 packages failed (alpha-pkg, gamma-pkg)" in result.stdout
    assert len(re.findall("^error:", result.stdout, re.MULTILINE)) == 1
